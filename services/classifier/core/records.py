"""Plain records <-> Mention and Classification, for the CLI and offline evaluation.

`scs classify` and `scs classifier evaluate` build the same Mention the ingest service would, so
what is measured offline is the code path that runs in production. (A plain {"id", "text"} line
under the default rules skips the pydantic models but not the analysis or the decisions: see
`Classifier.plain_record`.)
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from shared.events import (
    EARLIEST_MENTION_TIME,
    ID_NAMESPACE,
    Author,
    Channel,
    Classification,
    Mention,
    MentionKind,
)

# Offline records without a time (`scs classify` lines) get the earliest time a Mention takes.
_UNDATED = EARLIEST_MENTION_TIME
# Built once and shared (nothing mutates it): validating {"handle": "unknown"} on every line
# cost more than half of building the Mention.
_UNKNOWN_AUTHOR = Author(handle="unknown")
_ID_PREFIX = ID_NAMESPACE.bytes + "\x1f".join(("mention", "")).encode()


def _mention_id(channel: Channel, platform_id: str) -> uuid.UUID:
    """`Mention.id_for` (uuid5) without uuid.uuid5's overhead: a third of a plain line's cost."""
    digest = hashlib.sha1(_ID_PREFIX + f"{channel.value}\x1f{platform_id}".encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


def mention_from_record(record: dict[str, Any], line_id: str) -> Mention:
    """A Mention from {"id", "text", optional "language", "channel", "kind", "author", ...}."""
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    channel = Channel(record.get("channel") or Channel.WEB)
    record_id = record.get("id")
    platform_id = str(record_id if record_id is not None else line_id)
    author = record.get("author")
    if isinstance(author, str):
        author = {"handle": author}
    created = record.get("created_at")
    return Mention(
        mention_id=_mention_id(channel, platform_id),
        channel=channel,
        kind=MentionKind(record.get("kind") or MentionKind.MENTION),
        platform_id=platform_id,
        conversation_id=str(record.get("conversation_id") or platform_id),
        text=text,
        author=Author.model_validate(author) if author else _UNKNOWN_AUTHOR,
        created_at=created if created is not None else _UNDATED,
        received_at=_UNDATED,
        language=record.get("language"),
        brand=record.get("brand"),
        rating=record.get("rating"),
    )


def classification_record(record_id: Any, classification: Classification) -> dict[str, Any]:
    """The JSON line `scs classify` prints for one input."""
    return {
        "id": record_id,
        "language": classification.language,
        "sentiment": {
            "label": classification.sentiment.label,
            "score": round(classification.sentiment.score, 4),
        },
        # StrEnum members are str: orjson writes them as their values without .value's cost
        "intents": list(classification.intents),
        "is_complaint": classification.is_complaint,
        "crisis_risk": classification.crisis_risk,
        "priority": classification.priority,
        "reasons": classification.reasons,
    }
