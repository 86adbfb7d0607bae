"""Plain records <-> Mention and Classification, for the CLI and offline evaluation.

`scs classify` and `scs classifier evaluate` build the same Mention the ingest service would, so
what is measured offline is the code path that runs in production.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.events import Author, Channel, Classification, Mention, MentionKind

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mention_from_record(record: dict[str, Any], line_id: str) -> Mention:
    """A Mention from {"id", "text", optional "language", "channel", "kind", "author", ...}."""
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    channel = Channel(record.get("channel") or Channel.WEB)
    platform_id = str(record.get("id") if record.get("id") is not None else line_id)
    author = record.get("author") or {"handle": "unknown"}
    if isinstance(author, str):
        author = {"handle": author}
    created = record.get("created_at")
    return Mention(
        mention_id=Mention.id_for(channel, platform_id),
        channel=channel,
        kind=MentionKind(record.get("kind") or MentionKind.MENTION),
        platform_id=platform_id,
        conversation_id=str(record.get("conversation_id") or platform_id),
        text=text,
        author=Author.model_validate(author),
        created_at=created if created is not None else _EPOCH,
        received_at=_EPOCH,
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
        "intents": [intent.value for intent in classification.intents],
        "is_complaint": classification.is_complaint,
        "crisis_risk": classification.crisis_risk,
        "priority": classification.priority.value,
        "reasons": classification.reasons,
    }
