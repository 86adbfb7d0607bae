"""Reddit listings, comment pages with nested replies, single things."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.core import PayloadError, reddit
from shared.events import Attachment, Channel, MentionKind

BRANDS = {"AcmeSupport": "acme", "r/acme": "acme"}
POST = "t3_1fict01"


def test_comments_page(load_json: Callable[[str], Any]) -> None:
    payload = load_json("reddit/comments_page.json")
    result = reddit.parse(payload, brands=BRANDS)
    post, brand_reply, nested, rtl = result.mentions

    assert post.channel is Channel.REDDIT
    assert post.kind is MentionKind.MENTION
    assert post.platform_id == POST
    assert post.conversation_id == POST
    assert post.text == "Acme router drops Wi-Fi every night at 2am 📶"
    assert post.attachments == [
        Attachment(kind="image", url="https://i.redd.it/fictional-router-log.png")
    ]
    assert post.url == (
        "https://www.reddit.com/r/acme/comments/1fict01/acme_router_drops_wifi_every_night_at_2am/"
    )
    assert post.created_at == datetime.fromtimestamp(1741111111, UTC)
    assert post.brand == "acme"  # via the subreddit
    assert post.raw == payload[0]["data"]["children"][0]["data"]

    assert brand_reply.kind is MentionKind.REPLY
    assert brand_reply.in_reply_to == POST
    # Nested replies are walked; edited comments keep their fullname.
    assert nested.kind is MentionKind.COMMENT
    assert nested.platform_id == "t1_kfict02"
    assert nested.in_reply_to == "t1_kfict01"
    assert rtl.text == "نفس المشكلة عندي منذ أسبوع"
    assert {m.conversation_id for m in result.mentions} == {POST}

    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("more: comments not loaded in this listing", "t1_kfict09"),
        ("deleted", "t1_kfict03"),
    ]


def test_self_post_joins_title_and_body(load_json: Callable[[str], Any]) -> None:
    (post,) = reddit.parse(load_json("reddit/self_post.json"), brands=BRANDS).mentions
    assert post.text == (
        "Is Acme's warranty worth it?\n\n"
        "Thinking of buying the X2. Anyone had to claim the warranty? 🤔"
    )
    assert post.attachments == []
    assert post.brand is None


def test_brand_posts_are_ignored(load_json: Callable[[str], Any]) -> None:
    payload = load_json("reddit/self_post.json")
    payload["data"]["author"] = "AcmeSupport"
    assert reddit.parse(payload, brands=BRANDS).ignored[0].reason == "own post"


def test_removed_post_is_ignored(load_json: Callable[[str], Any]) -> None:
    payload = load_json("reddit/self_post.json")
    payload["data"]["selftext"] = "[removed]"
    result = reddit.parse(payload)
    assert result.mentions == []
    assert result.ignored[0].reason == "deleted"


def test_other_kinds_are_ignored() -> None:
    result = reddit.parse({"kind": "t5", "data": {"name": "t5_2qh1i"}})
    assert result.ignored[0].reason == "not a post or comment: t5"


@pytest.mark.parametrize(
    "path",
    [
        "0.kind",
        "0.data.children.0.data.title",
        "1.data.children.0.data.replies.data.children.0.data.link_id",
        "1.data.children.2.data.created_utc",
        "1.data.children.2.data.author",
    ],
)
def test_missing_required_field_is_named(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any], path: str
) -> None:
    with pytest.raises(PayloadError) as error:
        reddit.parse(drop(load_json("reddit/comments_page.json"), path))
    assert error.value.field == path
