"""Every message on every topic: one versioned envelope around a typed payload.

The envelope carries what any consumer needs without reading the payload (id for idempotency,
type and version for decoding, time, tenant, trace context, subject for partitioning). Payloads
are plain pydantic models; the pure cores of the services work on them directly.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
# Namespace for deterministic ids (uuid5): the same input always gives the same id, so a
# redelivered webhook or a replayed message is recognised downstream.
ID_NAMESPACE = uuid.UUID("6f1c2b8e-5a0d-4c8e-9a57-3e0f3c1d2b77")


def utcnow() -> datetime:
    return datetime.now(UTC)


def stable_id(*parts: str) -> uuid.UUID:
    """Deterministic id from its parts (uuid5), e.g. a mention id from platform and platform id."""
    return uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts))


class Channel(StrEnum):
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    REDDIT = "reddit"
    GOOGLE_BUSINESS = "google_business"
    TRUSTPILOT = "trustpilot"
    EMAIL = "email"
    FORUM = "forum"
    WEB = "web"


class MentionKind(StrEnum):
    MENTION = "mention"
    COMMENT = "comment"
    DM = "dm"
    REVIEW = "review"
    # The brand's own answer in a conversation: it stops the SLA clock, it never opens a case.
    REPLY = "reply"


class Author(BaseModel):
    model_config = ConfigDict(extra="allow")

    handle: str = Field(min_length=1, max_length=256)
    display_name: str | None = None
    followers: int = Field(default=0, ge=0)
    verified: bool = False
    language: str | None = None
    location: str | None = None


class Attachment(BaseModel):
    kind: str = Field(description="image, video, file, link, sticker, ...")
    url: str | None = None


class Mention(BaseModel):
    """One interaction, normalized from whatever platform it came from."""

    mention_id: uuid.UUID
    channel: Channel
    kind: MentionKind
    platform_id: str = Field(min_length=1, description="The platform's own id of this item")
    conversation_id: str = Field(min_length=1, description="Platform thread or conversation id")
    text: str = Field(max_length=20_000)
    author: Author
    created_at: AwareDatetime
    received_at: AwareDatetime = Field(default_factory=utcnow)
    url: str | None = None
    language: str | None = Field(default=None, description="BCP 47 primary tag, e.g. 'es'")
    brand: str | None = None
    in_reply_to: str | None = Field(default=None, description="Platform id of the parent item")
    rating: float | None = Field(
        default=None, description="Review stars, when the platform has them"
    )
    attachments: list[Attachment] = Field(default_factory=list)
    raw: dict[str, Any] | None = Field(
        default=None, description="The platform payload, as received"
    )

    @property
    def conversation_key(self) -> str:
        """Partition key: one conversation stays in order on one partition."""
        return f"{self.channel.value}:{self.conversation_id}"

    @staticmethod
    def id_for(channel: Channel, platform_id: str) -> uuid.UUID:
        return stable_id("mention", channel.value, platform_id)


class Priority(StrEnum):
    P1 = "P1"  # crisis
    P2 = "P2"  # high
    P3 = "P3"  # normal
    P4 = "P4"  # low

    @property
    def rank(self) -> int:
        return int(self.value[1])


class Intent(StrEnum):
    COMPLAINT = "complaint"
    INCIDENT = "incident"
    QUESTION = "question"
    REQUEST = "request"
    PRAISE = "praise"
    CRISIS_SIGNAL = "crisis_signal"
    SPAM = "spam"
    OTHER = "other"


class Sentiment(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(ge=-1.0, le=1.0, description="Signed polarity: -1 negative .. +1 positive")


class Classification(BaseModel):
    language: str
    sentiment: Sentiment
    intents: list[Intent]
    is_complaint: bool
    crisis_risk: float = Field(ge=0.0, le=1.0)
    priority: Priority
    reasons: list[str] = Field(description="Features and rules that decided, for the agent")
    model: str = Field(description="Name and version of the model that decided")


class MentionClassified(BaseModel):
    mention: Mention
    # None for the brand's own replies: there is nothing to classify, but they travel the same
    # ordered stream so the router sees a reply after the mention it answers.
    classification: Classification | None


class CaseStatus(StrEnum):
    OPEN = "open"
    RESPONDED = "responded"
    HANDED_OFF = "handed_off"
    RESOLVED = "resolved"


class Case(BaseModel):
    """The router's unit of work: one customer conversation that needs the brand."""

    case_id: uuid.UUID
    tenant: str
    conversation_key: str
    channel: Channel
    priority: Priority
    status: CaseStatus
    team: str
    language: str
    author_handle: str
    opened_at: AwareDatetime
    first_response_due_at: AwareDatetime
    first_response_at: AwareDatetime | None = None
    mention_count: int = Field(ge=1)


class CaseEvent(BaseModel):
    """A change to a case, with the mention that caused it: full context for the next hop."""

    case: Case
    mention: Mention
    classification: Classification | None = None


class EventType(StrEnum):
    MENTION_RECEIVED = "mention.received"
    MENTION_CLASSIFIED = "mention.classified"
    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_RESPONDED = "case.responded"


PAYLOAD_TYPES: dict[EventType, type[BaseModel]] = {
    EventType.MENTION_RECEIVED: Mention,
    EventType.MENTION_CLASSIFIED: MentionClassified,
    EventType.CASE_CREATED: CaseEvent,
    EventType.CASE_UPDATED: CaseEvent,
    EventType.CASE_RESPONDED: CaseEvent,
}


class TraceContext(BaseModel):
    """W3C trace context, carried hop to hop so one mention can be followed through the logs."""

    traceparent: str = Field(pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
    tracestate: str | None = None

    @classmethod
    def new(cls) -> TraceContext:
        return cls(traceparent=f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01")

    @classmethod
    def from_header(cls, traceparent: str | None) -> TraceContext:
        if traceparent:
            try:
                return cls(traceparent=traceparent.strip().lower())
            except ValidationError:
                pass
        return cls.new()

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]

    def child(self) -> TraceContext:
        """Same trace, new span: what the next hop records as its own."""
        version, trace_id, _, flags = self.traceparent.split("-")
        return TraceContext(
            traceparent=f"{version}-{trace_id}-{secrets.token_hex(8)}-{flags}",
            tracestate=self.tracestate,
        )


PayloadT = TypeVar("PayloadT", bound=BaseModel)


class Envelope(BaseModel, Generic[PayloadT]):
    id: uuid.UUID
    type: EventType
    version: int = SCHEMA_VERSION
    occurred_at: AwareDatetime
    tenant: str = Field(min_length=1, max_length=64)
    subject: str = Field(min_length=1, description="Partition key: the conversation key")
    trace: TraceContext
    data: PayloadT

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class InvalidEvent(ValueError):
    """A message that can never be processed (bad JSON, unknown type or version, bad payload)."""


def new_envelope(
    event_type: EventType,
    data: PayloadT,
    *,
    tenant: str,
    subject: str,
    trace: TraceContext,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope[PayloadT]:
    """Wrap a payload; pass event_id when retries must produce the same id (idempotency)."""
    expected = PAYLOAD_TYPES[event_type]
    if not isinstance(data, expected):
        raise TypeError(f"{event_type} carries {expected.__name__}, not {type(data).__name__}")
    envelope_type: type[Envelope[PayloadT]] = Envelope[type(data)]  # type: ignore[misc,assignment]
    return envelope_type(
        id=event_id or uuid.uuid4(),
        type=event_type,
        occurred_at=occurred_at or utcnow(),
        tenant=tenant,
        subject=subject,
        trace=trace,
        data=data,
    )


def decode_event(raw: bytes | None) -> Envelope[Any]:
    """Bytes from a topic to a typed envelope; InvalidEvent for anything that cannot be."""
    if raw is None:
        raise InvalidEvent("empty message")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEvent("not a JSON object")
    try:
        event_type = EventType(str(document.get("type")))
    except ValueError as exc:
        raise InvalidEvent(f"unknown event type {document.get('type')!r}") from exc
    if document.get("version") != SCHEMA_VERSION:
        raise InvalidEvent(f"unsupported version {document.get('version')!r} of {event_type}")
    payload_type = PAYLOAD_TYPES[event_type]
    try:
        return Envelope[payload_type].model_validate(document)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {event_type}: {exc.errors(include_url=False)}") from exc
