"""E-mail: RFC 5322 threading, bodies, attachments, the brand's own replies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.ingest.core import PayloadError
from services.ingest.core import email as mail
from shared.events import Attachment, Channel, Mention, MentionKind

BRANDS = {"support@acme.example": "acme"}
ROOT = "<CAFict0001.ahmed@mail.example.net>"


def _one(source: bytes | str) -> Mention:
    (mention,) = mail.parse(source, brands=BRANDS).mentions
    return mention


def test_new_thread(load_bytes: Callable[[str], bytes]) -> None:
    mention = _one(load_bytes("email/new_thread.eml"))
    assert mention.channel is Channel.EMAIL
    assert mention.kind is MentionKind.DM
    assert mention.platform_id == ROOT
    assert mention.conversation_id == ROOT
    assert mention.in_reply_to is None
    # RFC 2047 subject decoded; the plain part preferred over the HTML one; RTL and emoji kept.
    assert mention.text == (
        "طلبي لم يصل 📦\n\nمرحباً،\nطلبي رقم A-9001 لم يصل بعد أسبوعين. أرجو المساعدة 🙏\n\nأحمد"  # noqa: RUF001
    )
    assert mention.author.handle == "ahmed@example.net"  # addresses compare lower-cased
    assert mention.author.display_name == "Ahmed Example"
    assert mention.language == "ar"
    assert mention.brand == "acme"
    assert mention.created_at == datetime(2025, 3, 4, 10, 15, tzinfo=timezone(timedelta(hours=3)))
    assert mention.attachments == [Attachment(kind="file")]
    assert mention.raw is not None
    assert mention.raw["attachments"] == [
        {"filename": "invoice-A-9001.pdf", "content_type": "application/pdf"}
    ]


def test_brand_reply_stops_the_clock_in_the_same_conversation(
    load_bytes: Callable[[str], bytes],
) -> None:
    reply = _one(load_bytes("email/brand_reply.eml"))
    assert reply.kind is MentionKind.REPLY
    assert reply.conversation_id == ROOT
    assert reply.in_reply_to == ROOT


def test_deep_reply_threads_to_the_first_message_and_strips_html(
    load_bytes: Callable[[str], bytes],
) -> None:
    mention = _one(load_bytes("email/reply_html_only.eml"))
    assert mention.kind is MentionKind.DM
    assert mention.conversation_id == ROOT
    assert mention.in_reply_to == "<acme-reply-0001@acme.example>"
    assert mention.text == (
        "Re: Your order A-9001\n\nIt still hasn't arrived & the tracking page is blank.\n"
        "Thanks,\nAhmed"
    )
    assert mention.language is None


def test_attachment_only_mail(load_bytes: Callable[[str], bytes]) -> None:
    mention = _one(load_bytes("email/attachment_only.eml"))
    assert mention.text == ""
    assert mention.attachments == [Attachment(kind="image")]
    assert mention.author.display_name is None
    # "-0000": zone unknown, read as UTC.
    assert mention.created_at == datetime(2025, 3, 5, 7, 30, tzinfo=UTC)


def test_text_input_equals_bytes_input(load_bytes: Callable[[str], bytes]) -> None:
    source = load_bytes("email/brand_reply.eml")
    assert _one(source.decode()).mention_id == _one(source).mention_id


def test_missing_message_id_gets_a_stable_derived_id(load_bytes: Callable[[str], bytes]) -> None:
    source = load_bytes("email/brand_reply.eml").replace(
        b"Message-ID: <acme-reply-0001@acme.example>\n", b""
    )
    first, second = _one(source), _one(source)
    assert first.platform_id.startswith("sha256:")
    assert first.mention_id == second.mention_id
    assert first.conversation_id == ROOT


@pytest.mark.parametrize(
    ("header", "replacement"),
    [(b"From", b"X-Old-From"), (b"Date", b"X-Old-Date")],
)
def test_missing_required_header_is_named(
    load_bytes: Callable[[str], bytes], header: bytes, replacement: bytes
) -> None:
    source = load_bytes("email/brand_reply.eml").replace(header + b":", replacement + b":", 1)
    with pytest.raises(PayloadError) as error:
        mail.parse(source)
    assert error.value.field == header.decode()


def test_malformed_date_is_named(load_bytes: Callable[[str], bytes]) -> None:
    source = load_bytes("email/brand_reply.eml").replace(
        b"Date: Tue, 04 Mar 2025 09:00:00 +0000", b"Date: the other day"
    )
    with pytest.raises(PayloadError) as error:
        mail.parse(source)
    assert error.value.field == "Date"
