"""E-mail: one RFC 5322 message (as received, bytes or text) to one mention.

Threading follows the headers every mail client writes: the conversation is the first
Message-ID of the thread (`References[0]`, else `In-Reply-To`, else the message's own), so a
whole back-and-forth shares one conversation however deep it goes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from pydantic import ValidationError

from services.ingest.core import ParseResult, PayloadError
from services.ingest.core._common import (
    attachment,
    brand_of,
    build_mention,
    html_to_text,
    join_text,
)
from shared.events import Attachment, Author, Channel, MentionKind

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_MEDIA_KINDS = frozenset({"image", "video", "audio"})


def parse(
    message: bytes | str,
    *,
    brands: Mapping[str, str] | None = None,
    received_at: datetime | None = None,
) -> ParseResult:
    """`brands` maps the brand's addresses (lower case) to brand names.

    Mail from one of those addresses is the brand's own reply (it stops the SLA clock); mail to
    one of them is attributed to that brand.
    """
    source = message.encode() if isinstance(message, str) else message
    try:
        return _parse(source, brands, received_at)
    except (PayloadError, ValidationError):
        raise
    except Exception as exc:
        # The stdlib's email package parses headers lazily and raises assorted errors
        # (AttributeError, IndexError, ValueError...) on malformed ones: the message is bad.
        raise PayloadError(
            f"the message cannot be parsed as RFC 5322 ({type(exc).__name__})", field="body"
        ) from exc


def _parse(
    source: bytes, brands: Mapping[str, str] | None, received_at: datetime | None
) -> ParseResult:
    mail = message_from_bytes(source, policy=policy.default)
    if not isinstance(mail, EmailMessage):  # the `default` policy always builds EmailMessage
        raise TypeError("email policy did not produce an EmailMessage")
    name, sender = parseaddr(str(mail.get("From", "")))
    if not sender:
        raise PayloadError("missing required header From", field="From")
    sender = sender.lower()
    # Mail without a Message-ID still needs a stable id: the same bytes give the same one.
    message_id = _first_id(mail, "Message-ID") or (
        f"sha256:{hashlib.sha256(source).hexdigest()[:32]}"
    )
    references = _MESSAGE_ID.findall(str(mail.get("References", "")))
    reply_to = _first_id(mail, "In-Reply-To") or (references[-1] if references else None)
    recipients = [
        address.lower()
        for _, address in getaddresses(
            [str(v) for v in mail.get_all("To", []) + mail.get_all("Cc", [])]
        )
    ]
    body = _body(mail)
    parts = list(mail.iter_attachments())
    own = brands is not None and sender in brands
    return ParseResult(
        mentions=[
            build_mention(
                channel=Channel.EMAIL,
                kind=MentionKind.REPLY if own else MentionKind.DM,
                platform_id=message_id,
                conversation_id=(references[0] if references else None) or reply_to or message_id,
                text=join_text(str(mail.get("Subject", "")), body),
                author=Author(handle=sender, display_name=name or None),
                created_at=_date(mail),
                raw={
                    "headers": [[key, str(value)] for key, value in mail.items()],
                    "body": body,
                    "attachments": [
                        {"filename": part.get_filename(), "content_type": part.get_content_type()}
                        for part in parts
                    ],
                },
                received_at=received_at,
                language=str(mail.get("Content-Language", "")) or None,
                brand=brand_of(brands, sender, *recipients),
                in_reply_to=reply_to,
                attachments=[_attachment(part) for part in parts],
            )
        ]
    )


def _first_id(mail: EmailMessage, header: str) -> str | None:
    found = _MESSAGE_ID.findall(str(mail.get(header, "")))
    return found[0] if found else None


def _date(mail: EmailMessage) -> datetime:
    value = mail.get("Date")
    if value is None:
        raise PayloadError("missing required header Date", field="Date")
    try:
        date = parsedate_to_datetime(str(value))
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"Date is not an RFC 5322 date: {value}", field="Date") from exc
    # "-0000" means "zone unknown"; the stdlib then returns a naive time, which is UTC.
    return date if date.tzinfo else date.replace(tzinfo=UTC)


def _body(mail: EmailMessage) -> str:
    """The plain-text body, else the HTML one as text; attachment-only mail has none."""
    part = mail.get_body(preferencelist=("plain", "html"))
    if not isinstance(part, EmailMessage):
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or wrong charset: keep what is readable
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    return (html_to_text(content) if part.get_content_subtype() == "html" else content).strip()


def _attachment(part: EmailMessage) -> Attachment:
    kind = part.get_content_maintype()
    return attachment(kind if kind in _MEDIA_KINDS else "file")
