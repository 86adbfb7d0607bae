"""Reddit posts (`t3`) and comments (`t1`) from the JSON API: listings, single things, or the
`[post listing, comment listing]` pair a comments page returns, nested replies included.

The submission is the conversation: every comment's `link_id` names it. Platform ids are
fullnames (`t1_…`, `t3_…`) so a post and a comment can never share one; edits keep them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from services.ingest.core import Ignored, ParseResult
from services.ingest.core._common import (
    Obj,
    attachment,
    brand_of,
    build_mention,
    collect,
    join_text,
)
from shared.events import Attachment, Author, Channel, Mention, MentionKind

# What Reddit leaves in place of the author or text of deleted and removed things.
_GONE = frozenset({"[deleted]", "[removed]"})


def parse(
    payload: Any,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """`brands` maps the brand's usernames (its replies) and subreddits ("r/name") to brands."""
    return collect(_walk(payload, "", brands or {}, received_at))


def _walk(
    value: Any, path: str, brands: Mapping[str, str], received_at: datetime | None
) -> Iterator[Mention | Ignored]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}.{index}" if path else str(index), brands, received_at)
        return
    thing = Obj(value, path)
    kind = thing.string("kind")
    data = thing.obj("data")
    if kind == "Listing":
        for child in data.objs("children"):
            yield from _walk(child.data, child.path, brands, received_at)
    elif kind in ("t1", "t3"):
        yield _thing(kind, data, brands, received_at)
        # A comment's `replies` is a Listing, or "" when it has none.
        if isinstance(data.data.get("replies"), dict):
            yield from _walk(data.data["replies"], data.at("replies"), brands, received_at)
    elif kind == "more":
        yield Ignored("more: comments not loaded in this listing", data.opt_string("name"))
    else:
        yield Ignored(f"not a post or comment: {kind}", data.opt_string("name"))


def _thing(
    kind: str, data: Obj, brands: Mapping[str, str], received_at: datetime | None
) -> Mention | Ignored:
    name = data.string("name")
    author = data.string("author")
    comment = kind == "t1"
    text = data.opt_string("body") if comment else data.opt_string("selftext")
    if author in _GONE or text in _GONE:
        return Ignored("deleted", name)
    own = author in brands
    if own and not comment:
        return Ignored("own post", name)
    if own:
        mention_kind = MentionKind.REPLY
    else:
        mention_kind = MentionKind.COMMENT if comment else MentionKind.MENTION
    return build_mention(
        channel=Channel.REDDIT,
        kind=mention_kind,
        platform_id=name,
        conversation_id=data.string("link_id") if comment else name,
        text=(text or "") if comment else join_text(data.string("title"), text),
        author=Author(handle=author),
        created_at=data.time("created_utc"),
        raw=data.data,
        received_at=received_at,
        url=f"https://www.reddit.com{data.string('permalink')}" if data.has("permalink") else None,
        brand=brand_of(brands, author, data.opt_string("subreddit_name_prefixed")),
        in_reply_to=data.string("parent_id") if comment else None,
        attachments=[] if comment else _post_attachments(data),
    )


def _post_attachments(post: Obj) -> list[Attachment]:
    """A link post's target; self posts have none (their `url` is the post itself)."""
    if post.flag("is_self") or not post.has("url"):
        return []
    if post.flag("is_video"):
        kind = "video"
    elif post.flag("is_gallery") or post.opt_string("post_hint") == "image":
        kind = "image"
    else:
        kind = "link"
    return [attachment(kind, post.string("url"))]
