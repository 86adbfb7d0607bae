"""Properties every adapter shares: idempotent ids, received_at, raw kept; shared helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.core import (
    ParseResult,
    PayloadError,
    google_business,
    meta,
    reddit,
    trustpilot,
    x,
    youtube,
)
from services.ingest.core import email as mail
from services.ingest.core._common import Obj, html_to_text, primary_language
from shared.events import MAX_TEXT_CHARS

JSON_CASES: list[tuple[Callable[..., ParseResult], str]] = [
    (x.parse, "x/activity_tweets.json"),
    (x.parse, "x/activity_dms.json"),
    (x.parse, "x/v2_tweets.json"),
    (meta.parse, "meta/page_feed.json"),
    (meta.parse, "meta/messenger.json"),
    (meta.parse, "meta/instagram.json"),
    (youtube.parse, "youtube/comment_threads.json"),
    (reddit.parse, "reddit/comments_page.json"),
    (google_business.parse, "google_business/reviews.json"),
    (trustpilot.parse, "trustpilot/webhook.json"),
    (trustpilot.parse, "trustpilot/reviews.json"),
]
EMAILS = ["new_thread.eml", "brand_reply.eml", "reply_html_only.eml", "attachment_only.eml"]
EARLY = datetime(2025, 3, 4, 0, 0, tzinfo=UTC)
LATE = datetime(2025, 3, 9, 0, 0, tzinfo=UTC)


def _ids(result: ParseResult) -> list[tuple[str, str]]:
    return [(str(m.mention_id), m.conversation_id) for m in result.mentions]


@pytest.mark.parametrize(("parse", "fixture"), JSON_CASES, ids=[f for _, f in JSON_CASES])
def test_redelivery_maps_to_the_same_ids(
    load_json: Callable[[str], Any], parse: Callable[..., ParseResult], fixture: str
) -> None:
    first = parse(load_json(fixture), received_at=EARLY)
    second = parse(load_json(fixture), received_at=LATE)
    assert first.mentions
    assert _ids(first) == _ids(second)
    assert {m.received_at for m in first.mentions} == {EARLY}
    assert {m.received_at for m in second.mentions} == {LATE}
    assert all(isinstance(m.raw, dict) and m.raw for m in first.mentions)
    assert first.ignored == second.ignored


@pytest.mark.parametrize("name", EMAILS)
def test_email_redelivery_maps_to_the_same_ids(
    load_bytes: Callable[[str], bytes], name: str
) -> None:
    source = load_bytes(f"email/{name}")
    assert _ids(mail.parse(source, received_at=EARLY)) == _ids(mail.parse(source))


def test_received_at_defaults_to_now(load_json: Callable[[str], Any]) -> None:
    before = datetime.now(UTC)
    mention = x.parse(load_json("x/activity_dms.json")).mentions[0]
    assert before <= mention.received_at <= datetime.now(UTC)


def test_obj_reports_full_paths() -> None:
    doc = Obj({"a": [{"b": {}}], "n": "x", "t": "soon", "l": {}})
    with pytest.raises(PayloadError) as error:
        doc.objs("a")[0].obj("b").string("c")
    assert error.value.field == "a.0.b.c"
    with pytest.raises(PayloadError) as error:
        doc.integer("n")
    assert error.value.field == "n"
    with pytest.raises(PayloadError) as error:
        doc.time("t")
    assert error.value.field == "t"
    with pytest.raises(PayloadError) as error:
        doc.objs("l")
    assert error.value.field == "l"
    with pytest.raises(PayloadError) as error:
        Obj({"s": ["x"]}).string("s")
    assert error.value.field == "s"


def test_epoch_seconds_and_milliseconds_agree() -> None:
    doc = Obj({"s": 1741100000, "ms": 1741100000000, "str_ms": "1741100000000"})
    assert doc.time("s") == doc.time("ms") == doc.time("str_ms")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("pt-BR", "pt"),
        ("zh_Hant", "zh"),
        ("AR", "ar"),
        ("fr-CA, en", "fr"),
        ("und", None),
        ("qme", None),
        ("", None),
    ],
)
def test_primary_language(tag: str, expected: str | None) -> None:
    assert primary_language(tag) == expected


def test_html_to_text() -> None:
    html = "<div>Hi&nbsp;there <b>you</b></div><style>x{}</style><p>שלום &amp; 👋</p><br>"
    assert html_to_text(html) == "Hi there you\nשלום & 👋"  # noqa: RUF001


def test_overlong_text_is_cut_not_rejected(load_json: Callable[[str], Any]) -> None:
    payload = load_json("reddit/self_post.json")
    payload["data"]["selftext"] = "ا" * (MAX_TEXT_CHARS + 10)  # noqa: RUF001
    (post,) = reddit.parse(payload).mentions
    assert len(post.text) == MAX_TEXT_CHARS
    assert post.raw == payload["data"]
