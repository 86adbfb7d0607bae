"""Meta: Page feed and mentions, Messenger, Instagram comments, mentions and messaging."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest.core import PayloadError, meta
from shared.events import Attachment, Channel, MentionKind

PAGE_ID = "104000000000001"
IG_ID = "17841400000000001"
BRANDS = {PAGE_ID: "acme", IG_ID: "acme"}
POST = "104000000000001_555000000000001"
TOP_COMMENT = "555000000000001_900000000000001"


def test_page_comment_thread(load_json: Callable[[str], Any]) -> None:
    payload = load_json("meta/page_feed.json")
    result = meta.parse(payload, brands=BRANDS)
    comment, page_reply, edited, photo_reply, visitor_post, page_mention = result.mentions

    assert comment.channel is Channel.FACEBOOK
    assert comment.kind is MentionKind.COMMENT
    assert comment.platform_id == TOP_COMMENT
    assert comment.conversation_id == TOP_COMMENT
    assert comment.in_reply_to == POST
    assert comment.author.handle == "7100000000000001"
    assert comment.author.display_name == "Lena Example"
    assert comment.created_at == datetime.fromtimestamp(1741100000, UTC)
    assert comment.url == "https://www.facebook.com/104000000000001/posts/555000000000001"
    assert comment.brand == "acme"
    assert comment.raw == payload["entry"][0]["changes"][0]["value"]

    # The Page answering in the thread: a reply in the same conversation.
    assert page_reply.kind is MentionKind.REPLY
    assert page_reply.conversation_id == TOP_COMMENT
    assert page_reply.in_reply_to == TOP_COMMENT

    # Another customer's photo-only reply in the thread.
    assert photo_reply.kind is MentionKind.COMMENT
    assert photo_reply.text == ""
    assert photo_reply.conversation_id == TOP_COMMENT
    assert photo_reply.attachments == [
        Attachment(kind="image", url="https://scontent.xx.fbcdn.net/v/fictional-damaged-box.jpg")
    ]

    # Edits keep the platform id, so they dedupe against the original.
    assert edited.mention_id == comment.mention_id
    assert edited.text.endswith("support never called back.")

    assert visitor_post.kind is MentionKind.MENTION
    assert visitor_post.conversation_id == "104000000000001_555000000000099"
    assert visitor_post.text == "המוצר הגיע שבור, מצרפת תמונות 📷"
    assert [a.kind for a in visitor_post.attachments] == ["image", "image"]

    # A post elsewhere mentioning the Page: no time of its own, so the entry's.
    assert page_mention.kind is MentionKind.MENTION
    assert page_mention.author.display_name == "Mia Example"
    assert page_mention.created_at == datetime.fromtimestamp(1741100000, UTC)


def test_page_feed_ignores(load_json: Callable[[str], Any]) -> None:
    result = meta.parse(load_json("meta/page_feed.json"))
    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("removed", "555000000000001_900000000000004"),
        ("not an interaction: reaction", POST),
        ("own post", "104000000000001_555000000000100"),
        ("unsupported field: ratings", None),
    ]
    assert all(m.brand is None for m in result.mentions)


def test_page_top_level_comment_answers_the_post() -> None:
    payload = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": 1741100000,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "from": {"id": PAGE_ID},
                            "post_id": "104000000000001_7",
                            "comment_id": "7_1",
                            "parent_id": "104000000000001_7",
                            "item": "comment",
                            "verb": "add",
                            "message": "We're on it!",
                        },
                    }
                ],
            }
        ],
    }
    (reply,) = meta.parse(payload).mentions
    assert reply.kind is MentionKind.REPLY
    assert reply.conversation_id == "104000000000001_7"


def test_messenger(load_json: Callable[[str], Any]) -> None:
    result = meta.parse(load_json("meta/messenger.json"), brands=BRANDS)
    text, attachments_only, edit = result.mentions
    assert text.channel is Channel.FACEBOOK
    assert text.kind is MentionKind.DM
    assert text.author.handle == "6200000000000001"
    assert text.conversation_id == "104000000000001-6200000000000001"
    assert text.created_at == datetime(2025, 3, 4, 15, 26, 40, 123000, tzinfo=UTC)
    assert attachments_only.text == ""
    assert attachments_only.in_reply_to == "m_FictionalMid0001"
    assert attachments_only.attachments == [
        Attachment(kind="image", url="https://scontent.xx.fbcdn.net/v/fictional-receipt.jpg"),
        Attachment(kind="fallback", url=None),
    ]
    assert edit.mention_id == text.mention_id
    assert "A-7788" in edit.text
    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("echo", "m_FictionalMid0003"),
        ("not a message: delivery", None),
        ("not a message: read", None),
    ]


def test_instagram(load_json: Callable[[str], Any]) -> None:
    result = meta.parse(load_json("meta/instagram.json"), brands=BRANDS)
    comment, reply, dm, story_mention = result.mentions
    assert {m.channel for m in result.mentions} == {Channel.INSTAGRAM}
    assert comment.kind is MentionKind.COMMENT
    assert comment.text == "المقاس غلط تماماً 😭 كيف أرجع الطلب؟"
    assert comment.author.handle == "layla.example"
    assert comment.conversation_id == "17860000000000001"
    assert comment.in_reply_to == "18030000000000001"
    # IG comment webhooks carry no time: the entry's is used.
    assert comment.created_at == datetime.fromtimestamp(1741103000, UTC)
    assert reply.kind is MentionKind.REPLY
    assert reply.conversation_id == comment.conversation_id
    assert dm.kind is MentionKind.DM
    assert dm.text == "Is the red jacket back in stock? ❤️"
    assert dm.conversation_id == "1130000000000001-17841400000000001"
    assert story_mention.text == ""
    assert [a.kind for a in story_mention.attachments] == ["story_mention"]
    assert [(i.reason, i.platform_id) for i in result.ignored] == [
        ("mention without content: needs a Graph API lookup", "17860000000000077"),
        ("echo", "aWdfZAG1faXRlbTpGaWN0aW9uYWwz"),
        ("deleted", "aWdfZAG1faXRlbTpGaWN0aW9uYWwx"),
    ]


def test_unsupported_object_is_ignored() -> None:
    result = meta.parse({"object": "permissions", "entry": []})
    assert result.mentions == []
    assert result.ignored[0].reason == "unsupported object: permissions"


@pytest.mark.parametrize(
    ("fixture", "path"),
    [
        ("meta/page_feed.json", "object"),
        ("meta/page_feed.json", "entry"),
        ("meta/page_feed.json", "entry.0.id"),
        ("meta/page_feed.json", "entry.0.changes.0.value.from"),
        ("meta/page_feed.json", "entry.0.changes.0.value.post_id"),
        ("meta/page_feed.json", "entry.0.changes.1.value.comment_id"),
        ("meta/page_feed.json", "entry.0.changes.8.value.sender_id"),
        ("meta/messenger.json", "entry.0.messaging.0.message.mid"),
        ("meta/messenger.json", "entry.0.messaging.0.sender"),
        ("meta/instagram.json", "entry.0.changes.0.value.media"),
        ("meta/instagram.json", "entry.0.changes.1.value.from.id"),
    ],
)
def test_missing_required_field_is_named(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any], fixture: str, path: str
) -> None:
    with pytest.raises(PayloadError) as error:
        meta.parse(drop(load_json(fixture), path))
    assert error.value.field == path


def test_entry_time_is_required_only_when_the_item_has_none(
    load_json: Callable[[str], Any], drop: Callable[[Any, str], Any]
) -> None:
    messenger = drop(load_json("meta/messenger.json"), "entry.0.time")
    assert len(meta.parse(messenger).mentions) == 3
    instagram = drop(load_json("meta/instagram.json"), "entry.0.time")
    with pytest.raises(PayloadError) as error:
        meta.parse(instagram)
    assert error.value.field == "entry.0.time"
