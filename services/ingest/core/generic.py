"""The generic JSON mention: the format of `POST /v1/mentions` and of `scs ingest replay`."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.ingest.core import ParseResult
from shared.events import (
    MAX_JSON_DEPTH,
    Attachment,
    Author,
    Brand,
    Channel,
    Identifier,
    LanguageTag,
    Mention,
    MentionKind,
    MentionText,
    MentionTime,
    Url,
    json_problem,
    utcnow,
)


class GenericMentionIn(BaseModel):
    """What an integrator posts. Unknown fields are kept (in `raw`), never rejected.

    Field limits are the Mention's own (shared/events.py), so whatever passes here also passes
    every column downstream.
    """

    model_config = ConfigDict(extra="allow")

    channel: Channel
    kind: MentionKind
    text: MentionText
    author: Author
    created_at: MentionTime
    conversation_id: Identifier = Field(description="Thread id")
    id: Identifier | None = Field(
        default=None,
        description="The platform's id of the item; when absent one is derived from the content, "
        "so the same post sent twice is still recognised as one.",
    )
    url: Url | None = None
    language: LanguageTag | None = None
    brand: Brand | None = None
    in_reply_to: Identifier | None = None
    rating: float | None = Field(default=None, ge=0, le=10)
    attachments: list[Attachment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unknown_fields_travel(self) -> GenericMentionIn:
        """Unknown fields travel in `raw`, one level below the mention: they must fit there."""
        problem = json_problem(self.model_extra, MAX_JSON_DEPTH - 1)
        if problem is not None:
            raise ValueError(f"an unknown field {problem}")
        return self


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
