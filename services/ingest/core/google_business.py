"""Google Business Profile reviews: the v4 `reviews` resource, single or as a list response.

A review is its own conversation; the owner's `reviewReply` comes out as a `reply` mention in it,
so a review answered before we saw it never waits on an SLA clock. An edited review keeps its
`name`, hence its mention id. Deleted reviews simply stop being listed; nothing to parse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from services.ingest.core import ParseResult, PayloadError
from services.ingest.core._common import Obj, brand_of, build_mention, owner_reply
from shared.events import Author, Channel, Mention, MentionKind

_STARS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5, "STAR_RATING_UNSPECIFIED": None}
# Fields only a list response (`accounts.locations.reviews.list`) has; `reviews` is omitted
# there when a location has none.
_LIST_FIELDS = frozenset({"reviews", "averageRating", "totalReviewCount", "nextPageToken"})


def parse(
    payload: Any,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """`brands` maps location names ("accounts/1/locations/2") to brand names."""
    doc = Obj(payload)
    reviews = doc.objs("reviews") if _LIST_FIELDS & doc.data.keys() else [doc]
    return ParseResult(
        mentions=[mention for review in reviews for mention in _review(review, brands, received_at)]
    )


def _review(
    review: Obj, brands: Mapping[str, str] | None, received_at: datetime | None
) -> Iterator[Mention]:
    name = review.string("name")
    stars = review.string("starRating")
    if stars not in _STARS:
        raise PayloadError(f"unknown starRating {stars!r}", field=review.at("starRating"))
    location = name.split("/reviews/")[0]
    reviewer = review.opt_obj("reviewer")
    mention = build_mention(
        channel=Channel.GOOGLE_BUSINESS,
        kind=MentionKind.REVIEW,
        platform_id=name,
        conversation_id=name,
        # Star-only reviews have no comment at all.
        text=review.opt_string("comment") or "",
        author=Author(
            handle=(reviewer.opt_string("displayName") if reviewer else None) or "Anonymous"
        ),
        created_at=review.time("createTime"),
        raw=review.data,
        received_at=received_at,
        brand=brand_of(brands, location),
        rating=_STARS[stars],
    )
    yield mention
    reply = review.opt_obj("reviewReply")
    if reply:
        yield owner_reply(
            mention,
            text=reply.opt_string("comment") or "",
            created_at=reply.time("updateTime"),
            raw=reply.data,
        )
