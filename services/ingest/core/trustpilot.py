"""Trustpilot service reviews: webhook deliveries (`events`), API review lists, or one review.

A review is its own conversation; the company's reply becomes a `reply` mention in it. Updated
reviews keep their id (they dedupe); deleted ones are Ignored("deleted").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from services.ingest.core import Ignored, ParseResult
from services.ingest.core._common import (
    Obj,
    brand_of,
    build_mention,
    collect,
    join_text,
    owner_reply,
)
from shared.events import Author, Channel, Mention, MentionKind

_REVIEW_EVENTS = frozenset({"service-review-created", "service-review-updated"})


def parse(
    payload: Any,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """`brands` maps business unit ids to brand names (API reviews name their business unit)."""
    doc = Obj(payload)
    if "events" in doc.data:
        return collect(_events(doc, brands, received_at))
    reviews = doc.objs("reviews") if "reviews" in doc.data else [doc]
    return collect(
        mention for review in reviews for mention in _review(review, brands, received_at)
    )


def _events(
    doc: Obj, brands: Mapping[str, str] | None, received_at: datetime | None
) -> Iterator[Mention | Ignored]:
    for event in doc.req_objs("events"):
        name = event.string("eventName")
        data = event.obj("eventData")
        if name in _REVIEW_EVENTS:
            yield from _review(data, brands, received_at)
        elif name == "service-review-deleted":
            yield Ignored("deleted", data.opt_string("id"))
        else:
            yield Ignored(f"unsupported event: {name}", data.opt_string("id"))


def _review(
    review: Obj, brands: Mapping[str, str] | None, received_at: datetime | None
) -> Iterator[Mention]:
    review_id = review.string("id")
    consumer = review.obj("consumer")
    unit = review.opt_obj("businessUnit")
    mention = build_mention(
        channel=Channel.TRUSTPILOT,
        kind=MentionKind.REVIEW,
        platform_id=review_id,
        conversation_id=review_id,
        text=join_text(review.opt_string("title"), review.opt_string("text")),
        # Webhooks name the consumer `name`, the API `displayName`.
        author=Author(
            handle=consumer.opt_string("displayName") or consumer.string("name"),
            location=consumer.opt_string("displayLocation"),
        ),
        created_at=review.time("createdAt"),
        raw=review.data,
        received_at=received_at,
        url=f"https://www.trustpilot.com/reviews/{review_id}",
        language=review.opt_string("language"),
        brand=brand_of(brands, unit.opt_string("id") if unit else None),
        rating=review.integer("stars"),
    )
    yield mention
    reply = review.opt_obj("companyReply")
    if reply and reply.has("text"):
        yield owner_reply(
            mention,
            text=reply.string("text"),
            created_at=reply.time("createdAt"),
            author_name=reply.opt_string("authorBusinessUserName"),
            raw=reply.data,
        )
