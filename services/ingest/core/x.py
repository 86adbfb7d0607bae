"""X (Twitter): Account Activity API webhooks (v1.1 objects), v2 tweet payloads, CRC and signature.

Conversations: v2 tweets carry `conversation_id`. v1.1 tweets do not, so a reply's conversation
is the tweet it answers (`in_reply_to_status_id_str`) and an original tweet is its own: the brand's
reply to a customer tweet lands in that tweet's conversation and stops its clock. Longer chains
(customer → brand → customer) cannot be resolved to one root without a lookup; `in_reply_to` is
kept so the router can link them.
"""

from __future__ import annotations

import base64
import re
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
    pair_conversation,
)
from services.ingest.core.signatures import hmac_sha256, secure_equals
from shared.events import Attachment, Author, Channel, Mention, MentionKind

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
_V1_TIME = "%a %b %d %H:%M:%S %z %Y"
# Top-level Account Activity keys that describe the delivery rather than carry events.
_CONTEXT_KEYS = frozenset({"for_user_id", "user_has_blocked", "users", "apps"})
_PARSED_EVENTS = frozenset({"tweet_create_events", "direct_message_events"})
# The CRC answer is the same HMAC as a POST signature, over the token instead of the body. A
# token is therefore bounded to URL-safe base64: no `{`, so no token is ever a JSON object.
CRC_TOKEN_MAX_CHARS = 128
CRC_TOKEN_PATTERN = r"^[A-Za-z0-9_=-]+$"
_CRC_TOKEN_BYTES = re.compile(rb"[A-Za-z0-9_=-]{1,%d}" % CRC_TOKEN_MAX_CHARS)


def is_crc_token(value: bytes) -> bool:
    return _CRC_TOKEN_BYTES.fullmatch(value) is not None


def _signed(consumer_secret: str, message: str | bytes) -> str:
    return "sha256=" + base64.b64encode(hmac_sha256(consumer_secret, message)).decode()


def crc_response_token(crc_token: str, consumer_secret: str) -> str:
    """The `response_token` X expects back from the CRC GET, proving we hold the secret.

    Only for a bounded token: anything else could be a body we would then have signed.
    """
    if not is_crc_token(crc_token.encode()):
        raise ValueError("a CRC token is 1 to 128 URL-safe base64 characters")
    return _signed(consumer_secret, crc_token)


def verify_x_signature(body: bytes, header: str | None, consumer_secret: str) -> bool:
    """Whether `x-twitter-webhooks-signature` signs exactly these raw body bytes.

    A body shaped like a CRC token is never valid, whatever its signature: it may be a CRC
    answer replayed as a POST signature.
    """
    if is_crc_token(body):
        return False
    return secure_equals(_signed(consumer_secret, body), header)


def parse(
    payload: Any,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """An Account Activity delivery, or a v2 payload (`data` + `includes`).

    `brands` maps the brand's X user ids to brand names. Account Activity says which account it
    is for (`for_user_id`); v2 payloads do not, so there the brand's own tweets are recognised
    by their author being in `brands`.
    """
    doc = Obj(payload)
    if "data" in doc.data:
        return collect(_v2_tweets(doc, brands or {}, received_at))
    return collect(_activity(doc, brands or {}, received_at))


def _activity(
    doc: Obj, brands: Mapping[str, str], received_at: datetime | None
) -> Iterator[Mention | Ignored]:
    account = doc.string("for_user_id")
    brand = brand_of(brands, account)
    for tweet in doc.objs("tweet_create_events"):
        yield _v1_tweet(tweet, account, brand, received_at)
    users = doc.opt_obj("users")
    for event in doc.objs("direct_message_events"):
        yield _direct_message(event, users, account, brand, received_at)
    for key, value in doc.data.items():
        if key in _CONTEXT_KEYS or key in _PARSED_EVENTS:
            continue
        if key == "tweet_delete_events":
            for deletion in doc.objs(key):
                status = deletion.opt_obj("status")
                yield Ignored("deleted", status.opt_string("id") if status else None)
        else:
            for _ in value if isinstance(value, list) else [value]:
                yield Ignored(f"not an interaction: {key}")


def _v1_author(user: Obj) -> Author:
    """v1.1 user objects, as in tweets and in the `users` map of DM deliveries."""
    return Author(
        handle=user.string("screen_name"),
        display_name=user.opt_string("name"),
        followers=user.integer("followers_count", 0),
        verified=user.flag("verified"),
        language=user.opt_string("lang"),
        location=user.opt_string("location"),
    )


def _v1_tweet(
    tweet: Obj, account: str, brand: str | None, received_at: datetime | None
) -> Mention | Ignored:
    # Truncated (compatibility mode) tweets carry the whole text and media in `extended_tweet`.
    full = tweet.opt_obj("extended_tweet") or tweet
    text = full.opt_string("full_text") or full.opt_string("text") or ""
    display = full.data.get("display_text_range")
    if isinstance(display, list) and len(display) == 2 and all(isinstance(i, int) for i in display):
        # Drops the auto-inserted leading @replies and the trailing link to attached media.
        text = text[display[0] : display[1]]
    entities = full.opt_obj("extended_entities") or full.opt_obj("entities")
    user = tweet.obj("user")
    return _tweet(
        tweet=tweet,
        tweet_id=tweet.string("id_str"),
        author=_v1_author(user),
        text=text,
        created_at=tweet.time("created_at", _V1_TIME),
        replied_to=tweet.opt_string("in_reply_to_status_id_str"),
        conversation_id=None,
        is_retweet=tweet.has("retweeted_status"),
        own=user.string("id_str") == account,
        brand=brand,
        attachments=[
            attachment(media.string("type"), media.opt_string("media_url_https"))
            for media in (entities.objs("media") if entities else [])
        ],
        received_at=received_at,
    )


def _v2_tweets(
    doc: Obj, brands: Mapping[str, str], received_at: datetime | None
) -> Iterator[Mention | Ignored]:
    includes = doc.opt_obj("includes")
    users = {u.string("id"): u for u in includes.objs("users")} if includes else {}
    media = {m.string("media_key"): m for m in includes.objs("media")} if includes else {}
    for tweet in doc.many("data"):
        author_id = tweet.string("author_id")
        user = users.get(author_id)
        metrics = user.opt_obj("public_metrics") if user else None
        refs = {ref.string("type"): ref.string("id") for ref in tweet.objs("referenced_tweets")}
        entities = tweet.opt_obj("entities")
        mentioned = [m.opt_string("id") for m in entities.objs("mentions")] if entities else []
        keys = tweet.opt_obj("attachments")
        media_keys = keys.strings("media_keys") if keys else []
        yield _tweet(
            tweet=tweet,
            tweet_id=tweet.string("id"),
            author=Author(
                handle=user.string("username"),
                display_name=user.opt_string("name"),
                followers=metrics.integer("followers_count", 0) if metrics else 0,
                verified=user.flag("verified"),
                location=user.opt_string("location"),
            )
            if user
            else Author(handle=author_id),
            # Posts over 280 characters carry their whole text in `note_tweet`.
            text=(tweet.opt_obj("note_tweet") or tweet).opt_string("text") or "",
            created_at=tweet.time("created_at"),
            replied_to=refs.get("replied_to"),
            conversation_id=tweet.opt_string("conversation_id"),
            is_retweet="retweeted" in refs,
            own=author_id in brands,
            brand=brand_of(brands, author_id, tweet.opt_string("in_reply_to_user_id"), *mentioned),
            attachments=[
                attachment(
                    m.string("type"), m.opt_string("url") or m.opt_string("preview_image_url")
                )
                for m in (media[key] for key in media_keys if key in media)
            ],
            received_at=received_at,
        )


def _tweet(
    *,
    tweet: Obj,
    tweet_id: str,
    author: Author,
    text: str,
    created_at: datetime,
    replied_to: str | None,
    conversation_id: str | None,
    is_retweet: bool,
    own: bool,
    brand: str | None,
    attachments: list[Attachment],
    received_at: datetime | None,
) -> Mention | Ignored:
    """v1.1 and v2 alike: brand replies stop clocks; its other posts and retweets are noise."""
    if is_retweet:
        return Ignored("retweet", tweet_id)
    if own and replied_to is None:
        return Ignored("own post", tweet_id)
    return build_mention(
        channel=Channel.X,
        kind=MentionKind.REPLY if own else MentionKind.MENTION,
        platform_id=tweet_id,
        conversation_id=conversation_id or replied_to or tweet_id,
        text=text,
        author=author,
        created_at=created_at,
        raw=tweet.data,
        received_at=received_at,
        # The handle-free permalink: it works even when the payload did not include the author.
        url=f"https://x.com/i/web/status/{tweet_id}",
        language=tweet.opt_string("lang"),
        brand=brand,
        in_reply_to=replied_to,
        attachments=attachments,
    )


def _direct_message(
    event: Obj, users: Obj | None, account: str, brand: str | None, received_at: datetime | None
) -> Mention | Ignored:
    event_id = event.string("id")
    if event.data.get("type") != "message_create":
        return Ignored(f"not a message: {event.data.get('type')}", event_id)
    create = event.obj("message_create")
    sender = create.string("sender_id")
    recipient = create.obj("target").string("recipient_id")
    data = create.obj("message_data")
    sent = data.opt_obj("attachment")
    media = sent.opt_obj("media") if sent else None
    profile = users.opt_obj(sender) if users else None
    return build_mention(
        channel=Channel.X,
        kind=MentionKind.REPLY if sender == account else MentionKind.DM,
        platform_id=event_id,
        conversation_id=pair_conversation(sender, recipient),
        text=data.opt_string("text") or "",
        author=_v1_author(profile) if profile else Author(handle=sender),
        created_at=event.time("created_timestamp"),
        raw=event.data,
        received_at=received_at,
        brand=brand,
        attachments=[attachment(media.string("type"), media.opt_string("media_url_https"))]
        if media
        else [],
    )
