"""X: Account Activity deliveries (v1.1 tweets, DMs, other events) and v2 payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.core import PayloadError, x
from shared.events import Attachment, Channel, Mention, MentionKind

BRAND_ID = "1500000000000000001"
BRANDS = {BRAND_ID: "acme"}


def _by_id(mentions: list[Mention]) -> dict[str, Mention]:
    return {m.platform_id: m for m in mentions}


def test_customer_tweet_uses_extended_text_media_and_profile(
    load_json: Callable[[str], Any],
) -> None:
    payload = load_json("x/activity_tweets.json")
    tweet = _by_id(x.parse(payload, brands=BRANDS).mentions)["1896900000000000101"]

    assert tweet.channel is Channel.X
    assert tweet.kind is MentionKind.MENTION
    assert tweet.mention_id == Mention.id_for(Channel.X, "1896900000000000101")
    assert tweet.conversation_id == "1896900000000000101"
    # Full text of a truncated tweet, without the trailing media link; emoji intact.
    assert tweet.text.endswith("shows up smashed.")
    assert "😡📦" in tweet.text
    assert "t.co" not in tweet.text
    assert tweet.language == "en"
    assert tweet.brand == "acme"
    assert tweet.created_at == datetime(2025, 3, 4, 9, 15, 27, tzinfo=UTC)
    assert tweet.author.handle == "dana_fictional"
    assert tweet.author.display_name == "Dana Fictional 🌵"
    assert tweet.author.followers == 1824
    assert tweet.author.location == "Tucson, AZ"
    assert tweet.author.verified is False
    assert tweet.attachments == [
        Attachment(kind="image", url="https://pbs.twimg.com/media/FictionalBox1.jpg"),
        Attachment(kind="video", url="https://pbs.twimg.com/ext_tw_video_thumb/Fictional2.jpg"),
    ]
    assert tweet.raw == payload["tweet_create_events"][0]
    assert tweet.url == "https://x.com/i/web/status/1896900000000000101"


def test_brand_reply_joins_the_customer_tweet_conversation(
    load_json: Callable[[str], Any],
) -> None:
    mentions = _by_id(x.parse(load_json("x/activity_tweets.json"), brands=BRANDS).mentions)
    reply = mentions["1896900000000000202"]
    assert reply.kind is MentionKind.REPLY
    assert reply.conversation_id == mentions["1896900000000000101"].conversation_id
    assert reply.in_reply_to == "1896900000000000101"
    # The auto-inserted leading @mention is outside display_text_range.
    assert reply.text.startswith("We're sorry, Dana.")
    assert reply.author.verified is True


def test_rtl_reply_in_thread(load_json: Callable[[str], Any]) -> None:
    mentions = _by_id(x.parse(load_json("x/activity_tweets.json"), brands=BRANDS).mentions)
    arabic = mentions["1896900000000000303"]
    assert arabic.kind is MentionKind.MENTION
    assert arabic.language == "ar"
    assert arabic.text == "شكرًا، لكن لم يصلني أي رد على الرسالة الخاصة حتى الآن 🙏"
    assert arabic.conversation_id == "1896900000000000202"
    assert arabic.in_reply_to == "1896900000000000202"
    assert arabic.author.location == "عمّان"


def test_minimal_user_and_undetermined_language(load_json: Callable[[str], Any]) -> None:
    mentions = _by_id(x.parse(load_json("x/activity_tweets.json"), brands=BRANDS).mentions)
    photo = mentions["1896900000000000606"]
    assert photo.language is None  # "und"
    assert photo.author.display_name is None
    assert photo.author.followers == 0
    assert photo.text == "@acme_support"
    assert [a.kind for a in photo.attachments] == ["image"]


def test_own_posts_and_retweets_are_ignored(load_json: Callable[[str], Any]) -> None:
    result = x.parse(load_json("x/activity_tweets.json"))
    assert {(i.reason, i.platform_id) for i in result.ignored} == {
        ("own post", "1896900000000000404"),
        ("retweet", "1896900000000000505"),
    }
    assert len(result.mentions) == 4
    assert all(m.brand is None for m in result.mentions)  # no brands configured


def test_direct_messages(load_json: Callable[[str], Any]) -> None:
    result = x.parse(load_json("x/activity_dms.json"), brands=BRANDS)
    first, attachment_only, answer = result.mentions
    assert first.kind is MentionKind.DM
    assert first.text == "שלום, ההזמנה שלי A-2201 לא הגיעה. אפשר לבדוק? 🙂"
    assert first.author.handle == "noa_example"
    assert first.author.location == "חיפה"
    assert first.author.followers == 401
    assert first.created_at == datetime(2025, 3, 4, 9, 20, 0, 123000, tzinfo=UTC)
    assert attachment_only.text == ""
    assert attachment_only.attachments == [
        Attachment(kind="image", url="https://ton.x.com/1.1/ton/data/dm/FictionalLabel.jpg")
    ]
    assert answer.kind is MentionKind.REPLY
    assert answer.author.handle == "acme_support"
    assert {m.conversation_id for m in result.mentions} == {
        "1500000000000000001-1600000000000000088"
    }
    assert result.ignored == []


def test_dm_without_users_map_falls_back_to_the_sender_id(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any]
) -> None:
    payload = drop(load_json("x/activity_dms.json"), "users")
    assert x.parse(payload).mentions[0].author.handle == "1600000000000000088"


def test_other_events_are_ignored_with_reasons(load_json: Callable[[str], Any]) -> None:
    result = x.parse(load_json("x/activity_other.json"))
    assert result.mentions == []
    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("not an interaction: favorite_events", None),
        ("not an interaction: follow_events", None),
        ("deleted", "1896900000000000303"),
        ("not an interaction: direct_message_indicate_typing_events", None),
    ]


def test_non_message_dm_events_are_ignored() -> None:
    payload = {
        "for_user_id": BRAND_ID,
        "direct_message_events": [{"type": "message_delete", "id": "42"}],
    }
    assert x.parse(payload).ignored[0].reason == "not a message: message_delete"


def test_v2_payload(load_json: Callable[[str], Any]) -> None:
    result = x.parse(load_json("x/v2_tweets.json"), brands=BRANDS)
    customer, reply = result.mentions
    assert customer.kind is MentionKind.MENTION
    assert customer.conversation_id == "1896999999999999000"
    assert customer.in_reply_to == "1896999999999999000"
    assert customer.language == "es"
    assert customer.brand == "acme"
    assert customer.author.handle == "carlos_example"
    assert customer.author.followers == 733
    assert customer.author.location == "Sevilla"
    assert customer.created_at == datetime(2025, 3, 4, 15, 20, 11, tzinfo=UTC)
    assert customer.attachments == [
        Attachment(kind="image", url="https://pbs.twimg.com/media/FictionalRouter.jpg")
    ]
    assert reply.kind is MentionKind.REPLY
    assert reply.conversation_id == customer.conversation_id
    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("retweet", "1897000000000000003")
    ]


def test_v2_single_tweet_without_includes_or_conversation() -> None:
    payload = {
        "data": {
            "id": "9",
            "text": "long post",
            "note_tweet": {"text": "long post, the whole of it"},
            "author_id": "77",
            "created_at": "2025-03-04T15:20:11Z",
        }
    }
    (tweet,) = x.parse(payload).mentions
    assert tweet.author.handle == "77"
    assert tweet.conversation_id == "9"
    assert tweet.text == "long post, the whole of it"
    assert tweet.language is None


@pytest.mark.parametrize(
    ("fixture", "path", "field"),
    [
        ("x/activity_tweets.json", "for_user_id", "for_user_id"),
        ("x/activity_tweets.json", "tweet_create_events.0.id_str", "tweet_create_events.0.id_str"),
        ("x/activity_tweets.json", "tweet_create_events.2.user", "tweet_create_events.2.user"),
        (
            "x/activity_tweets.json",
            "tweet_create_events.1.user.screen_name",
            "tweet_create_events.1.user.screen_name",
        ),
        (
            "x/activity_tweets.json",
            "tweet_create_events.0.created_at",
            "tweet_create_events.0.created_at",
        ),
        (
            "x/activity_dms.json",
            "direct_message_events.0.message_create.sender_id",
            "direct_message_events.0.message_create.sender_id",
        ),
        ("x/v2_tweets.json", "data.1.author_id", "data.1.author_id"),
    ],
)
def test_missing_required_field_is_named(
    load_json: Callable[[str], Any],
    drop: Callable[[Any, str], Any],
    fixture: str,
    path: str,
    field: str,
) -> None:
    with pytest.raises(PayloadError) as error:
        x.parse(drop(load_json(fixture), path))
    assert error.value.field == field


def test_malformed_timestamp_is_named(load_json: Callable[[str], Any]) -> None:
    payload = load_json("x/activity_tweets.json")
    payload["tweet_create_events"][0]["created_at"] = "yesterday"
    with pytest.raises(PayloadError) as error:
        x.parse(payload)
    assert error.value.field == "tweet_create_events.0.created_at"


def test_not_an_object() -> None:
    with pytest.raises(PayloadError):
        x.parse(["not", "a", "delivery"])
