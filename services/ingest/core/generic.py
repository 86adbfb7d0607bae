"""The generic JSON mention: the format of `POST /v1/mentions` and of `scs ingest replay`."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.ingest.core import ParseResult
from shared.events import Attachment, Author, Channel, Mention, MentionKind, utcnow


class GenericMentionIn(BaseModel):
    """What an integrator posts. Unknown fields are kept (in `raw`), never rejected."""

    model_config = ConfigDict(extra="allow")

    channel: Channel
    kind: MentionKind
    text: str = Field(max_length=20_000)
    author: Author
    created_at: AwareDatetime
    conversation_id: str = Field(min_length=1, max_length=512, description="Thread id")
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="The platform's id of the item; when absent one is derived from the content, "
        "so the same post sent twice is still recognised as one.",
    )
    url: str | None = Field(default=None, max_length=2048)
    language: str | None = Field(default=None, min_length=2, max_length=16)
    brand: str | None = Field(default=None, max_length=256)
    in_reply_to: str | None = Field(default=None, max_length=512)
    rating: float | None = Field(default=None, ge=0, le=10)
    attachments: list[Attachment] = Field(default_factory=list)


def derived_platform_id(item: GenericMentionIn) -> str:
    digest = hashlib.sha256(
        "\x1f".join(
            [
                item.channel.value,
                item.conversation_id,
                item.author.handle,
                item.created_at.isoformat(),
                item.text,
            ]
        ).encode()
    ).hexdigest()
    return f"sha256:{digest[:32]}"


def parse(item: GenericMentionIn, *, received_at: datetime | None = None) -> ParseResult:
    platform_id = item.id or derived_platform_id(item)
    raw: dict[str, Any] = item.model_dump(mode="json")
    mention = Mention(
        mention_id=Mention.id_for(item.channel, platform_id),
        channel=item.channel,
        kind=item.kind,
        platform_id=platform_id,
        conversation_id=item.conversation_id,
        text=item.text,
        author=item.author,
        created_at=item.created_at,
        received_at=received_at or utcnow(),
        url=item.url,
        language=item.language.lower() if item.language else None,
        brand=item.brand,
        in_reply_to=item.in_reply_to,
        rating=item.rating,
        attachments=item.attachments,
        raw=raw,
    )
    return ParseResult(mentions=[mention])
