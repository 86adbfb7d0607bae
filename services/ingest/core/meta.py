"""Meta webhooks: Facebook Pages (feed, mention, Messenger) and Instagram (comments, mentions, DMs).

Each `entry` is one of the brand's accounts (`entry.id`: the Page id or Instagram account id), so
an item authored by that id is the brand's own. Decisions:

- Edits (`verb: edited`, `message_edit`) keep the item's platform id, hence its mention id: they
  dedupe against the original instead of opening a second case.
- Removals and deletions are Ignored("removed" / "deleted"); echoes of the brand's own Messenger
  and Instagram messages are Ignored("echo").
- Comment threads: a customer's top-level comment opens its own conversation, replies join their
  parent comment's, and the brand's top-level comment answers the post itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.ingest.core import Ignored, ParseResult
from services.ingest.core._common import (
    Obj,
    attachment,
    brand_of,
    build_mention,
    collect,
    pair_conversation,
)
from services.ingest.core.signatures import hmac_sha256, secure_equals
from shared.events import Attachment, Author, Channel, Mention, MentionKind

SIGNATURE_HEADER = "X-Hub-Signature-256"
_CHANNELS = {"page": Channel.FACEBOOK, "instagram": Channel.INSTAGRAM}
_POST_ITEMS = frozenset({"post", "status", "photo", "video", "share"})
_ADDED_VERBS = frozenset({"add", "edited", "edit"})
_REMOVED_VERBS = frozenset({"remove", "delete", "hide"})
# Keys of a `messaging` event that are not what the event is about.
_MESSAGING_CONTEXT = frozenset({"sender", "recipient", "timestamp"})


def verify_meta_signature(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `X-Hub-Signature-256` ("sha256=" + hex HMAC) signs exactly these raw body bytes."""
    return secure_equals("sha256=" + hmac_sha256(app_secret, body).hex(), header)


def verification_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The subscription handshake: the `hub.challenge` to echo, or None to answer 403."""
    challenge = params.get("hub.challenge")
    if params.get("hub.mode") != "subscribe" or not challenge or not verify_token:
        return None
    return challenge if secure_equals(verify_token, params.get("hub.verify_token")) else None


def parse(
    payload: Any,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """A Page or Instagram webhook delivery. `brands` maps Page / IG account ids to brand names."""
    doc = Obj(payload)
    kind = doc.string("object")
    channel = _CHANNELS.get(kind)
    if channel is None:
        return ParseResult(ignored=[Ignored(f"unsupported object: {kind}")])
    return collect(_entries(doc, channel, brands or {}, received_at))


@dataclass(frozen=True)
class _Entry:
    """What every item of one `entry` shares: channel, the brand's account, delivery times."""

    entry: Obj
    channel: Channel
    account: str
    brand: str | None
    received_at: datetime | None

    def time(self, item: Obj, key: str) -> datetime:
        """The item's own time when it has one, else the entry's (IG comments carry none)."""
        return item.time(key) if item.has(key) else self.entry.time("time")


def _entries(
    doc: Obj, channel: Channel, brands: Mapping[str, str], received_at: datetime | None
) -> Iterator[Mention | Ignored]:
    for entry in doc.req_objs("entry"):
        account = entry.string("id")
        context = _Entry(entry, channel, account, brand_of(brands, account), received_at)
        for change in entry.objs("changes"):
            yield _change(change, context)
        for event in entry.objs("messaging"):
            yield _message(event, context)


def _change(change: Obj, context: _Entry) -> Mention | Ignored:
    field = change.string("field")
    value = change.obj("value")
    facebook = context.channel is Channel.FACEBOOK
    if facebook and field in ("feed", "mention"):
        return _page_item(field, value, context)
    if not facebook and field in ("comments", "live_comments"):
        return _instagram_comment(value, context)
    if not facebook and field == "mentions":
        # Only ids are sent: emitting a placeholder now would take the mention id the looked-up
        # mention needs, and dedupe would then drop the real one.
        item_id = value.opt_string("comment_id") or value.string("media_id")
        return Ignored("mention without content: needs a Graph API lookup", item_id)
    return Ignored(f"unsupported field: {field}")


def _thread(item_id: str, parent_comment: str | None, post_id: str, own: bool) -> str:
    if parent_comment:
        return parent_comment
    return post_id if own else item_id


def _page_item(field: str, value: Obj, context: _Entry) -> Mention | Ignored:
    """Page feed changes (visitor posts, comments) and posts or comments mentioning the Page."""
    item = value.opt_string("item") or "post"
    if item != "comment" and item not in _POST_ITEMS:
        return Ignored(f"not an interaction: {item}", value.opt_string("post_id"))
    post_id = value.string("post_id")
    item_id = value.string("comment_id") if item == "comment" else post_id
    verb = value.opt_string("verb") or "add"
    if verb in _REMOVED_VERBS:
        return Ignored("removed", item_id)
    if verb not in _ADDED_VERBS:
        return Ignored(f"not an interaction: {item} {verb}", item_id)
    if field == "mention":
        author_id, name = value.string("sender_id"), value.opt_string("sender_name")
    else:
        sender = value.obj("from")
        author_id, name = sender.string("id"), sender.opt_string("name")
    own = author_id == context.account
    if own and item != "comment":
        return Ignored("own post", item_id)
    parent = value.opt_string("parent_id") if item == "comment" else None
    parent_comment = parent if parent != post_id else None
    post = value.opt_obj("post")
    if own:
        kind = MentionKind.REPLY
    elif field == "feed" and item == "comment":
        kind = MentionKind.COMMENT
    else:
        kind = MentionKind.MENTION
    return build_mention(
        channel=context.channel,
        brand=context.brand,
        received_at=context.received_at,
        raw=value.data,
        kind=kind,
        platform_id=item_id,
        conversation_id=_thread(item_id, parent_comment, post_id, own)
        if item == "comment"
        else post_id,
        text=value.opt_string("message") or "",
        author=Author(handle=author_id, display_name=name),
        created_at=context.time(value, "created_time"),
        url=post.opt_string("permalink_url") if post else None,
        in_reply_to=(parent or post_id) if item == "comment" else None,
        attachments=_feed_attachments(value),
    )


def _feed_attachments(value: Obj) -> list[Attachment]:
    photos = value.data.get("photos")
    found = [
        ("image", value.data.get("photo")),
        ("video", value.data.get("video")),
        ("link", value.data.get("link")),
        *(("image", url) for url in (photos if isinstance(photos, list) else [])),
    ]
    return [attachment(kind, url) for kind, url in found if isinstance(url, str) and url]


def _instagram_comment(value: Obj, context: _Entry) -> Mention:
    comment_id = value.string("id")
    sender = value.obj("from")
    author_id = sender.string("id")
    media_id = value.obj("media").string("id")
    parent = value.opt_string("parent_id")
    own = author_id == context.account
    return build_mention(
        channel=context.channel,
        brand=context.brand,
        received_at=context.received_at,
        raw=value.data,
        kind=MentionKind.REPLY if own else MentionKind.COMMENT,
        platform_id=comment_id,
        conversation_id=_thread(comment_id, parent, media_id, own),
        text=value.opt_string("text") or "",
        author=Author(handle=sender.opt_string("username") or author_id),
        created_at=context.time(value, "timestamp"),
        in_reply_to=parent or media_id,
    )


def _message(event: Obj, context: _Entry) -> Mention | Ignored:
    """Messenger and Instagram messaging share one event shape."""
    message = event.opt_obj("message") or event.opt_obj("message_edit")
    if message is None:
        what = ", ".join(sorted(set(event.data) - _MESSAGING_CONTEXT)) or "empty event"
        return Ignored(f"not a message: {what}")
    mid = message.string("mid")
    if message.flag("is_echo"):
        return Ignored("echo", mid)
    if message.flag("is_deleted"):
        return Ignored("deleted", mid)
    sender = event.obj("sender").string("id")
    recipient = event.obj("recipient").string("id")
    reply_to = message.opt_obj("reply_to")
    return build_mention(
        channel=context.channel,
        brand=context.brand,
        received_at=context.received_at,
        raw=event.data,
        kind=MentionKind.DM,
        platform_id=mid,
        conversation_id=pair_conversation(sender, recipient),
        text=message.opt_string("text") or "",
        # Messaging payloads carry only the page-scoped id; the profile needs an API call.
        author=Author(handle=sender),
        created_at=context.time(event, "timestamp"),
        in_reply_to=reply_to.opt_string("mid") if reply_to else None,
        attachments=[
            attachment(item.string("type"), _payload_url(item))
            for item in message.objs("attachments")
        ],
    )


def _payload_url(item: Obj) -> str | None:
    payload = item.opt_obj("payload")
    return payload.opt_string("url") if payload else None
