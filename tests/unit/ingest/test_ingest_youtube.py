"""YouTube Data API v3 comment threads and comments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.core import PayloadError, youtube
from shared.events import Channel, MentionKind

BRANDS = {"UCacmeFictionalChannel0001": "acme"}
THREAD = "UgxFictionalThread1AaBbCc"


def test_thread_with_replies(load_json: Callable[[str], Any]) -> None:
    payload = load_json("youtube/comment_threads.json")
    result = youtube.parse(payload, brands=BRANDS)
    top, brand_reply, follow_up = result.mentions

    assert top.channel is Channel.YOUTUBE
    assert top.kind is MentionKind.COMMENT
    assert top.platform_id == THREAD
    assert top.conversation_id == THREAD
    assert top.in_reply_to is None
    # textOriginal preferred over the HTML textDisplay.
    assert (
        top.text
        == "The update bricked my thermostat 🔥🔥 *no heat* since Monday & support line is closed"
    )
    assert top.author.handle == "@pat.example"
    assert top.created_at == datetime(2025, 3, 4, 18, 2, 33, tzinfo=UTC)
    assert top.url == f"https://www.youtube.com/watch?v=vIdEo00001a&lc={THREAD}"
    assert top.brand == "acme"
    assert top.raw == payload["items"][0]["snippet"]["topLevelComment"]

    assert brand_reply.kind is MentionKind.REPLY
    assert brand_reply.conversation_id == THREAD
    assert brand_reply.in_reply_to == THREAD

    # Only textDisplay (HTML) given: tags stripped, RTL text kept.
    assert follow_up.kind is MentionKind.COMMENT
    assert follow_up.text == "@acme הרסט לא עזר, עדיין אין חימום\nתודה"  # noqa: RUF001
    assert follow_up.conversation_id == THREAD

    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("own post", "UgyFictionalThread2DdEeFf")
    ]


def test_without_brands_every_comment_is_a_customer_comment(
    load_json: Callable[[str], Any],
) -> None:
    result = youtube.parse(load_json("youtube/comment_threads.json"))
    assert [m.kind for m in result.mentions] == [MentionKind.COMMENT] * 4
    assert all(m.brand is None for m in result.mentions)


def test_single_comment_with_missing_optional_fields(load_json: Callable[[str], Any]) -> None:
    (comment,) = youtube.parse(load_json("youtube/comment.json"), brands=BRANDS).mentions
    assert comment.text == "Unboxing the Acme X2 👀"
    assert comment.brand is None  # someone else's video
    assert comment.language is None
    assert comment.author.followers == 0


def test_comment_list_response(load_json: Callable[[str], Any]) -> None:
    single = load_json("youtube/comment.json")
    payload = {"kind": "youtube#commentListResponse", "items": [single, single]}
    result = youtube.parse(payload)
    assert len({m.mention_id for m in result.mentions}) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "youtube#videoListResponse", "items": []}, "kind"),
        (
            {"kind": "youtube#commentListResponse", "items": [{"kind": "youtube#video"}]},
            "items.0.kind",
        ),
    ],
)
def test_unknown_resource_kind_is_a_payload_error(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as error:
        youtube.parse(payload)
    assert error.value.field == field


@pytest.mark.parametrize(
    "path",
    [
        "kind",
        "items.0.snippet.topLevelComment",
        "items.0.snippet.topLevelComment.snippet.publishedAt",
        "items.0.replies.comments.1.id",
        "items.0.replies.comments.0.snippet.authorDisplayName",
    ],
)
def test_missing_required_field_is_named(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any], path: str
) -> None:
    with pytest.raises(PayloadError) as error:
        youtube.parse(drop(load_json("youtube/comment_threads.json"), path))
    assert error.value.field == path
