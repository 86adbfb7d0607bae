"""YouTube Data API v3 comments: `commentThreads` and `comments` resources, single or listed.

The comment thread is the conversation: a top-level comment and its replies (`parentId`) share
the top-level comment's id. YouTube has no deletion notices and edits keep the comment id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from services.ingest.core import Ignored, ParseResult, PayloadError
from services.ingest.core._common import Obj, brand_of, build_mention, collect, html_to_text
from shared.events import Author, Channel, Mention, MentionKind

_LISTS = frozenset({"youtube#commentThreadListResponse", "youtube#commentListResponse"})


def parse(
    payload: Any,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """A commentThread or comment resource, or a list response of either.

    `brands` maps the brand's YouTube channel ids to brand names: comments on those channels'
    videos get the brand, and comments written by those channels are the brand's replies.
    """
    doc = Obj(payload)
    resources = doc.objs("items") if doc.string("kind") in _LISTS else [doc]
    return collect(
        outcome
        for resource in resources
        for outcome in _resource(resource, brands or {}, received_at)
    )


def _resource(
    resource: Obj, brands: Mapping[str, str], received_at: datetime | None
) -> Iterator[Mention | Ignored]:
    kind = resource.string("kind")
    if kind == "youtube#comment":
        yield _comment(resource, brands, received_at)
    elif kind == "youtube#commentThread":
        yield _comment(resource.obj("snippet").obj("topLevelComment"), brands, received_at)
        replies = resource.opt_obj("replies")
        for reply in replies.objs("comments") if replies else []:
            yield _comment(reply, brands, received_at)
    else:
        raise PayloadError(f"not a YouTube comment resource: {kind}", field=resource.at("kind"))


def _comment(
    comment: Obj, brands: Mapping[str, str], received_at: datetime | None
) -> Mention | Ignored:
    comment_id = comment.string("id")
    snippet = comment.obj("snippet")
    parent = snippet.opt_string("parentId")
    channel = snippet.opt_obj("authorChannelId")
    author_id = channel.opt_string("value") if channel else None
    own = author_id is not None and author_id in brands
    if own and parent is None:
        return Ignored("own post", comment_id)
    video_id = snippet.opt_string("videoId")
    # textOriginal is only guaranteed to the comment's author; textDisplay is HTML.
    text = snippet.opt_string("textOriginal") or html_to_text(
        snippet.opt_string("textDisplay") or ""
    )
    return build_mention(
        channel=Channel.YOUTUBE,
        kind=MentionKind.REPLY if own else MentionKind.COMMENT,
        platform_id=comment_id,
        conversation_id=parent or comment_id,
        text=text,
        author=Author(handle=snippet.string("authorDisplayName")),
        created_at=snippet.time("publishedAt"),
        raw=comment.data,
        received_at=received_at,
        url=f"https://www.youtube.com/watch?v={video_id}&lc={comment_id}" if video_id else None,
        brand=brand_of(brands, author_id, snippet.opt_string("channelId")),
        in_reply_to=parent,
    )
