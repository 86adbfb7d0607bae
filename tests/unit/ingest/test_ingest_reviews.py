"""Review platforms: Google Business Profile and Trustpilot, with the business's replies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.core import PayloadError, google_business, trustpilot
from shared.events import Channel, Mention, MentionKind

LOCATION = "accounts/108000000000000000001/locations/9000000000000000001"
GBP_BRANDS = {LOCATION: "acme"}
REVIEW_1 = f"{LOCATION}/reviews/AbFvOqFictionalReview1"


def test_google_reviews_with_owner_reply(load_json: Callable[[str], Any]) -> None:
    payload = load_json("google_business/reviews.json")
    review, reply, stars_only, rtl = google_business.parse(payload, brands=GBP_BRANDS).mentions

    assert review.channel is Channel.GOOGLE_BUSINESS
    assert review.kind is MentionKind.REVIEW
    assert review.platform_id == REVIEW_1
    assert review.conversation_id == REVIEW_1
    assert review.rating == 1
    assert review.text == "Waited 40 minutes and the pharmacy counter closed early 😤"
    assert review.author.handle == "Maya Example"
    # Nanosecond precision from the API is accepted (truncated to microseconds).
    assert review.created_at == datetime(2025, 3, 3, 17, 45, 12, 123456, tzinfo=UTC)
    assert review.brand == "acme"
    assert review.raw == payload["reviews"][0]

    assert reply.kind is MentionKind.REPLY
    assert reply.conversation_id == REVIEW_1
    assert reply.in_reply_to == REVIEW_1
    assert reply.author.handle == "acme"
    assert reply.created_at == datetime(2025, 3, 4, 10, 30, tzinfo=UTC)
    assert reply.rating is None

    assert stars_only.text == ""
    assert stars_only.rating == 5
    assert rtl.text == "שירות בסדר, אבל התור היה ארוך מדי"
    assert rtl.rating == 3


def test_google_single_review_and_unspecified_rating(load_json: Callable[[str], Any]) -> None:
    review = load_json("google_business/reviews.json")["reviews"][2]
    review["starRating"] = "STAR_RATING_UNSPECIFIED"
    del review["reviewer"]
    (mention,) = google_business.parse(review).mentions
    assert mention.rating is None
    assert mention.author.handle == "Anonymous"
    assert mention.brand is None


def test_google_empty_list_response() -> None:
    assert google_business.parse({"averageRating": 0, "totalReviewCount": 0}).mentions == []


def test_google_unknown_star_rating(load_json: Callable[[str], Any]) -> None:
    payload = load_json("google_business/reviews.json")
    payload["reviews"][1]["starRating"] = "SIX"
    with pytest.raises(PayloadError) as error:
        google_business.parse(payload)
    assert error.value.field == "reviews.1.starRating"


@pytest.mark.parametrize(
    "path",
    [
        "reviews.0.name",
        "reviews.1.starRating",
        "reviews.2.createTime",
        "reviews.0.reviewReply.updateTime",
    ],
)
def test_google_missing_required_field_is_named(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any], path: str
) -> None:
    with pytest.raises(PayloadError) as error:
        google_business.parse(drop(load_json("google_business/reviews.json"), path))
    assert error.value.field == path


def test_trustpilot_webhook_events(load_json: Callable[[str], Any]) -> None:
    payload = load_json("trustpilot/webhook.json")
    result = trustpilot.parse(payload)
    created, updated = result.mentions

    assert created.channel is Channel.TRUSTPILOT
    assert created.kind is MentionKind.REVIEW
    assert created.rating == 1
    assert created.text == (
        "Lieferung kam nie an 📦\n\nSeit zwei Wochen warte ich, der Kundendienst antwortet nicht."
    )
    assert created.language == "de"
    assert created.author.handle == "Jonas Beispiel"
    assert created.url == "https://www.trustpilot.com/reviews/67c6f1a2b3c4d5e6f7a8b901"
    assert created.created_at == datetime(2025, 3, 4, 7, 12, tzinfo=UTC)
    assert created.raw == payload["events"][0]["eventData"]
    # An update is the same review: same id, so it dedupes.
    assert updated.mention_id == created.mention_id
    assert updated.rating == 2
    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("deleted", "67c6f1a2b3c4d5e6f7a8b902")
    ]


def test_trustpilot_api_reviews_with_company_reply(load_json: Callable[[str], Any]) -> None:
    brands = {"5a1b2c3d4e5f6a7b8c9d0e1f": "acme"}
    review, reply = trustpilot.parse(load_json("trustpilot/reviews.json"), brands=brands).mentions
    assert review.text == "خدمة ممتازة\n\nالتوصيل سريع والتغليف ممتاز 👍"  # noqa: RUF001
    assert review.language == "ar"
    assert review.author.handle == "سلمى"
    assert review.author.location == "Dubai, AE"
    assert review.brand == "acme"
    assert review.rating == 4
    assert reply.kind is MentionKind.REPLY
    assert reply.author.handle == "Acme Care Team"
    assert reply.conversation_id == review.conversation_id
    assert reply.mention_id == Mention.id_for(Channel.TRUSTPILOT, f"{review.platform_id}#reply")


def test_trustpilot_single_review_and_unknown_event(load_json: Callable[[str], Any]) -> None:
    review = load_json("trustpilot/webhook.json")["events"][1]["eventData"]
    assert len(trustpilot.parse(review).mentions) == 1
    other = {"events": [{"eventName": "product-review-created", "eventData": {"id": "p1"}}]}
    assert trustpilot.parse(other).ignored[0].reason == "unsupported event: product-review-created"


@pytest.mark.parametrize(
    "path",
    [
        "events.0.eventName",
        "events.0.eventData.stars",
        "events.0.eventData.consumer",
        "events.1.eventData.consumer.name",
        "events.1.eventData.createdAt",
        "events.1.eventData.id",
    ],
)
def test_trustpilot_missing_required_field_is_named(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any], path: str
) -> None:
    with pytest.raises(PayloadError) as error:
        trustpilot.parse(drop(load_json("trustpilot/webhook.json"), path))
    assert error.value.field == path
