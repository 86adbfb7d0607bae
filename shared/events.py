"""Every message on every topic: one versioned envelope around a typed payload.

The envelope carries what any consumer needs without reading the payload (id for idempotency,
type and version for decoding, time, tenant, trace context, subject for partitioning). Payloads
are plain pydantic models; the pure cores of the services work on them directly.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
# Namespace for deterministic ids (uuid5): the same input always gives the same id, so a
# redelivered webhook or a replayed message is recognised downstream.
ID_NAMESPACE = uuid.UUID("6f1c2b8e-5a0d-4c8e-9a57-3e0f3c1d2b77")


def utcnow() -> datetime:
    return datetime.now(UTC)


def stable_id(*parts: str) -> uuid.UUID:
    """Deterministic id from its parts (uuid5), e.g. a mention id from platform and platform id."""
    return uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts))


# -- Limits of a mention: the single source for ingest's edge validation ----------------------
# They follow the columns the mention's values land in later, so a value that would break a
# column downstream (and be dead-lettered there) is refused at the edge instead.
# Platform ids: ingest_seen_mentions.platform_id is String(512); a conversation id becomes the
# router's conversation_key `<channel>:<id>`, String(600), and the longest channel is 15 chars.
MAX_ID_CHARS = 512
MAX_HANDLE_CHARS = 256  # router_cases.author_handle
MAX_NAME_CHARS = 512  # display names and locations: free text, but bounded
# The classifier's topic_key, String(256), is `<brand lower-cased>|crisis:<category>`.
MAX_BRAND_CHARS = 128
MAX_URL_CHARS = 2048
MAX_LANGUAGE_CHARS = 16  # router_cases.language
MAX_TEXT_CHARS = 20_000
# Nesting of platform payloads kept in `raw` (and of unknown fields): real ones are about 10
# deep; orjson refuses to encode beyond 254 and the envelope adds levels around `raw`.
MAX_JSON_DEPTH = 64
# An encoded mention.received event: the classifier's and router's events carry the same
# mention plus a classification and a case, and every one must stay under the broker's 1 MiB.
MAX_MENTION_EVENT_BYTES = 900_000
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_LANGUAGE_TAG = r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"


def _single_line(value: str) -> str:
    """Ids, handles, urls and names end up in keys, columns and headers: no control characters."""
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


def _without_nul(value: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL; other control characters (newlines) are text."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# A mention's time starts clocks, buckets and deadlines downstream: one from before social
# platforms existed or from well past now is a bad value at the edge, never an overflow later.
EARLIEST_MENTION_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_MENTION_SKEW = timedelta(days=1)


def _plausible_mention_time(value: datetime) -> datetime:
    if value < EARLIEST_MENTION_TIME:
        raise ValueError(f"must not be before {EARLIEST_MENTION_TIME.date().isoformat()}")
    if value > utcnow() + LATEST_MENTION_SKEW:
        raise ValueError("must not be more than a day in the future")
    return value


MentionTime = Annotated[AwareDatetime, AfterValidator(_plausible_mention_time)]


def _brand_fits_topic_key(value: str) -> str:
    if len(value.lower()) > MAX_BRAND_CHARS:  # lower-casing can lengthen some characters
        raise ValueError(f"must be at most {MAX_BRAND_CHARS} characters once lower-cased")
    return _single_line(value)


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_single_line)
]
Handle = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_HANDLE_CHARS),
    AfterValidator(_single_line),
]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS), AfterValidator(_without_nul)]
Brand = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_BRAND_CHARS),
    AfterValidator(_brand_fits_topic_key),
]
Url = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS), AfterValidator(_single_line)
]
LanguageTag = Annotated[
    str, StringConstraints(max_length=MAX_LANGUAGE_CHARS, pattern=_LANGUAGE_TAG)
]
MentionText = Annotated[
    str, StringConstraints(max_length=MAX_TEXT_CHARS), AfterValidator(_without_nul)
]
_INT64_RANGE = range(-(2**63), 2**64)  # what orjson can encode


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why decoded JSON cannot travel as an event (too deep, a NUL, an integer orjson cannot
    encode), or None. Iterative, so no payload can exhaust the stack."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if item not in _INT64_RANGE:
                return "contains an integer out of the 64-bit range"
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return f"is nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                if any("\x00" in str(key) for key in item):
                    return "contains a NUL character in a key"
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
    return None


def _travels_as_json(value: Any) -> Any:
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


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

    handle: Handle
    display_name: Name | None = None
    followers: int = Field(default=0, ge=0, lt=2**63)
    verified: bool = False
    language: Name | None = None
    location: Name | None = None

    @model_validator(mode="after")
    def _extra_fields_travel(self) -> Author:
        _travels_as_json(self.model_extra)
        return self


class Attachment(BaseModel):
    kind: Annotated[
        str, StringConstraints(min_length=1, max_length=64), AfterValidator(_single_line)
    ] = Field(description="image, video, file, link, sticker, ...")
    url: Url | None = None


class Mention(BaseModel):
    """One interaction, normalized from whatever platform it came from."""

    mention_id: uuid.UUID
    channel: Channel
    kind: MentionKind
    platform_id: Identifier = Field(description="The platform's own id of this item")
    conversation_id: Identifier = Field(description="Platform thread or conversation id")
    text: MentionText
    author: Author
    created_at: MentionTime
    received_at: AwareDatetime = Field(default_factory=utcnow)
    url: Url | None = None
    language: LanguageTag | None = Field(default=None, description="BCP 47 tag, e.g. 'es'")
    brand: Brand | None = None
    in_reply_to: Identifier | None = Field(
        default=None, description="Platform id of the parent item"
    )
    rating: float | None = Field(
        default=None, ge=0, le=10, description="Review stars, when the platform has them"
    )
    attachments: list[Attachment] = Field(default_factory=list)
    raw: dict[str, Any] | None = Field(
        default=None, description="The platform payload, as received"
    )

    @field_validator("raw")
    @classmethod
    def _raw_travels(cls, raw: dict[str, Any] | None) -> dict[str, Any] | None:
        return _travels_as_json(raw)  # type: ignore[no-any-return]

    @property
    def conversation_key(self) -> str:
        """Partition key: one conversation stays in order on one partition."""
        return f"{self.channel.value}:{self.conversation_id}"

    @staticmethod
    def id_for(channel: Channel, platform_id: str, tenant: str | None = None) -> uuid.UUID:
        """Our id of a platform item. Ingest adds the tenant (`in_tenant`): two tenants that
        receive the same item have two mentions, which no consumer's dedupe, case or velocity
        count can take for one; a parser, which knows no tenant, leaves it out."""
        parts = ("mention", channel.value, platform_id)
        return stable_id(*parts) if tenant is None else stable_id(*parts, "tenant", tenant)

    def in_tenant(self, tenant: str) -> Mention:
        """The mention as the tenant's own: its id scoped to the tenant (see `id_for`)."""
        return self.model_copy(
            update={"mention_id": Mention.id_for(self.channel, self.platform_id, tenant)}
        )


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
    # What the router's crisis mode groups by: related mentions share a topic, and `similar_recent`
    # is how many similar negative ones came just before this one (the velocity).
    topic_key: str | None = Field(default=None, max_length=256)
    similar_recent: int = Field(default=0, ge=0)


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
    # Absorbed into another case of the same customer (`merged_into`): closed for good.
    MERGED = "merged"


class ClockKind(StrEnum):
    """The SLA clocks of a case: the first answer, each answer after a customer writes again,
    and the resolution."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class ClockState(StrEnum):
    RUNNING = "running"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"  # stopped before its deadline
    MISSED = "missed"  # stopped after its deadline


class SlaClock(BaseModel):
    """One running (or stopped) promise. Deadlines are in the owning queue's time zone, so a
    desktop shows them as the team reads them."""

    kind: ClockKind
    started_at: AwareDatetime
    due_at: AwareDatetime
    warning_at: AwareDatetime
    business_time: bool
    state: ClockState = ClockState.RUNNING
    stopped_at: AwareDatetime | None = None

    @property
    def running(self) -> bool:
        return self.stopped_at is None


class Case(BaseModel):
    """The router's unit of work: one customer conversation that needs the brand."""

    model_config = ConfigDict(populate_by_name=True)

    case_id: uuid.UUID
    tenant: str
    conversation_key: str
    # A conversation that comes back after its case was resolved (and the reopen window passed)
    # opens a new case: generation 1, 2, ...
    generation: int = Field(default=0, ge=0)
    channel: Channel
    # The interaction kind that opened it (a DM, a review, a public mention): SLAs differ by it.
    kind: MentionKind = MentionKind.MENTION
    priority: Priority
    status: CaseStatus
    # The owning queue (team); events of schema version 1 called it `team`.
    queue: str = Field(validation_alias=AliasChoices("queue", "team"))
    language: str
    country: str | None = None
    author_handle: str
    opened_at: AwareDatetime
    first_response_due_at: AwareDatetime
    first_response_at: AwareDatetime | None = None
    mention_count: int = Field(ge=1)
    tags: list[str] = Field(default_factory=list)
    clocks: list[SlaClock] = Field(default_factory=list)
    last_customer_at: AwareDatetime | None = None
    last_brand_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    reopened_count: int = Field(default=0, ge=0)
    # The agent working it (None: in its queue, unclaimed).
    assignee: str | None = None
    # Steps of the escalation ladder taken so far, and where the case went.
    escalation_level: int = Field(default=0, ge=0)
    escalated_to: list[str] = Field(default_factory=list)
    crisis_id: uuid.UUID | None = None
    # Number of the case's latest event: a desktop orders a case's webhooks by it and sees a gap.
    sequence: int = Field(default=0, ge=0)
    # Other conversations whose mentions join this case: a merged case's, a linked private
    # thread (conversation keys); and, once absorbed by a merge, the case that carries on.
    linked_conversations: list[str] = Field(default_factory=list)
    merged_into: uuid.UUID | None = None

    def clock(self, kind: ClockKind) -> SlaClock | None:
        return next((c for c in self.clocks if c.kind is kind), None)


class RuleTrace(BaseModel):
    """One playbook rule as the router looked at it: whether it matched, and why (not)."""

    rule: str
    matched: bool
    why: str
    applied: list[str] = Field(default_factory=list, description="Actions it decided")


class Routing(BaseModel):
    """How the playbook routed the mention: every rule looked at, and the hours situation."""

    playbook: str = Field(description="Brand and version of the playbook that decided")
    queue: str = Field(description="The queue the playbook chose (the case's, unless crisis)")
    priority: Priority = Field(description="The playbook's final priority")
    trace: list[RuleTrace] = Field(default_factory=list)
    out_of_hours: bool = False
    next_open_at: AwareDatetime | None = None
    acknowledgement: str | None = Field(
        default=None, description="Suggested acknowledgement (an agent may send or adapt it)"
    )
    record_only: bool = False


class SlaAlert(BaseModel):
    """The clock behind an sla.warning or sla.breached event."""

    clock: SlaClock


class Escalation(BaseModel):
    target: str
    trigger: str = Field(description="warning, breach, crisis or rule:<name>")
    level: int = Field(ge=1)


class ActionKind(StrEnum):
    ASSIGN = "assign"  # to an agent (claim: to oneself)
    NOTE = "note"  # internal, never sent to the customer
    PRIORITY = "priority"
    ESCALATE = "escalate"
    REPLY = "reply"  # the brand's answer, sent through the platform adapter
    RESOLVE = "resolve"
    REOPEN = "reopen"
    HANDOFF = "handoff"  # to another channel or team, with the whole context
    HANDOFF_OUTCOME = "handoff_outcome"  # the target reports back: resolved, or returned
    MERGE = "merge"  # absorb `other_case` (the same customer on another channel) into this one
    LINK = "link"  # a private thread on the same platform joins this case


class HandoffTarget(StrEnum):
    PRIVATE_MESSAGE = "private_message"  # the same platform's DMs: still the social channel
    PHONE = "phone"
    EMAIL = "email"
    STORE = "store"
    LEGAL = "legal"
    MARKETING = "marketing"
    QUEUE = "queue"  # another queue of the playbook (`queue` names it)


class HandoffPackage(BaseModel):
    """Everything the next hop needs so the customer never repeats themselves."""

    target: HandoffTarget
    queue: str | None = None
    reason: str
    customer: dict[str, Any] = Field(description="Handle, name, followers, verified, history")
    conversation: list[dict[str, Any]] = Field(
        description="Every mention of the conversation (and its linked threads), oldest first, "
        "with its classification (and reasons) and routing"
    )
    notes: list[str] = Field(description="The agents' internal notes")
    clocks: list[SlaClock]
    sla_state: str | None = Field(
        default=None, description="The worst running clock, else met / missed / none"
    )
    suggested_next_step: str


class Handoff(BaseModel):
    package: HandoffPackage | None = None
    outcome: Literal["resolved", "returned"] | None = None


class AgentAction(BaseModel):
    """What an agent did to a case, through the API; it goes through the router's decider."""

    action_id: uuid.UUID
    kind: ActionKind
    actor: str = Field(min_length=1, max_length=128)
    at: AwareDatetime
    assignee: str | None = Field(default=None, max_length=128)
    priority: Priority | None = None
    target: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    outcome: Literal["resolved", "returned"] | None = None
    other_case: uuid.UUID | None = Field(default=None, description="merge: the case absorbed")
    conversation_id: Identifier | None = Field(
        default=None, description="link: the private thread's id on the case's platform"
    )


class CaseEvent(BaseModel):
    """A change to a case, with the mention that caused it: full context for the next hop."""

    case: Case
    mention: Mention | None = Field(
        default=None, description="The latest mention (None for clock and crisis events)"
    )
    classification: Classification | None = None
    routing: Routing | None = None
    sla: SlaAlert | None = None
    escalation: Escalation | None = None
    action: AgentAction | None = None
    handoff: Handoff | None = None


# -- Customer profiles --------------------------------------------------------------------

Relationship = Literal["potential", "current", "loyal", "former", "critic"]
SentimentTrend = Literal["improving", "stable", "worsening", "unknown"]


class Identity(BaseModel):
    """A customer on one platform: handles are per platform (lower-cased, without @)."""

    channel: Channel
    handle: Handle

    @classmethod
    def of(cls, channel: Channel, handle: str) -> Identity:
        """The identity behind a handle as written: a handle that is only "@" stays itself, and
        one that lower-casing lengthens (İ) is cut back to the limit."""
        normal = handle.lower().lstrip("@")[:MAX_HANDLE_CHARS]
        return cls(channel=channel, handle=normal or handle)


class SentimentPoint(BaseModel):
    at: AwareDatetime
    score: float = Field(ge=-1.0, le=1.0)
    case_id: uuid.UUID | None = None


class CustomerProfile(BaseModel):
    """One customer of a tenant across channels: what an agent should know before answering
    (history, mood, relationship, reach). Kept by the router as mentions arrive; merges and
    linked threads join identities of several platforms into one profile."""

    customer_id: uuid.UUID
    tenant: str
    identities: list[Identity] = Field(min_length=1)
    display_name: Name | None = None
    first_seen_at: AwareDatetime
    last_seen_at: AwareDatetime
    mention_count: int = Field(default=0, ge=0)
    case_count: int = Field(default=0, ge=0)
    last_cases: list[uuid.UUID] = Field(
        default_factory=list, description="The latest cases, newest first (at most 10)"
    )
    sentiment: list[SentimentPoint] = Field(
        default_factory=list, description="The latest scored mentions, oldest first (at most 20)"
    )
    sentiment_trend: SentimentTrend = "unknown"
    relationship: Relationship | None = None
    relationship_source: Literal["agent", "playbook", "inferred"] | None = Field(
        default=None, description="Who said so: an agent's word is never overwritten"
    )
    followers: int = Field(default=0, ge=0, lt=2**63, description="The most on any identity")
    verified: bool = False
    vip: bool = False
    # Joined into another profile (a merge of two cases of the same person): look there.
    merged_into: uuid.UUID | None = None


class Crisis(BaseModel):
    """A burst of related high-risk mentions, handled as one incident until it is closed."""

    crisis_id: uuid.UUID
    tenant: str
    topic_key: str
    opened_at: AwareDatetime
    last_signal_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    case_count: int = Field(default=0, ge=0)
    peak_velocity: int = Field(default=0, ge=0)


class CrisisEvent(BaseModel):
    crisis: Crisis


class EventType(StrEnum):
    MENTION_RECEIVED = "mention.received"
    MENTION_CLASSIFIED = "mention.classified"
    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_RESPONDED = "case.responded"
    CASE_ESCALATED = "case.escalated"
    CASE_RESOLVED = "case.resolved"
    CASE_REOPENED = "case.reopened"
    CASE_HANDOFF = "case.handoff"
    CASE_MERGED = "case.merged"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    CRISIS_OPENED = "crisis.opened"
    CRISIS_CLOSED = "crisis.closed"


CASE_EVENT_TYPES = frozenset(
    {
        EventType.CASE_CREATED,
        EventType.CASE_UPDATED,
        EventType.CASE_RESPONDED,
        EventType.CASE_ESCALATED,
        EventType.CASE_RESOLVED,
        EventType.CASE_REOPENED,
        EventType.CASE_HANDOFF,
        EventType.CASE_MERGED,
        EventType.SLA_WARNING,
        EventType.SLA_BREACHED,
    }
)
CRISIS_EVENT_TYPES = frozenset({EventType.CRISIS_OPENED, EventType.CRISIS_CLOSED})

PAYLOAD_TYPES: dict[EventType, type[BaseModel]] = {
    EventType.MENTION_RECEIVED: Mention,
    EventType.MENTION_CLASSIFIED: MentionClassified,
    **dict.fromkeys(CASE_EVENT_TYPES, CaseEvent),
    **dict.fromkeys(CRISIS_EVENT_TYPES, CrisisEvent),
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
        """The wire encoding, made once: ingest sizes an event before it publishes it, and an
        envelope is never changed after it is made."""
        return self._encoded

    @cached_property
    def _encoded(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


EnvelopeT = TypeVar("EnvelopeT", bound=Envelope[Any])


def by_tenant(envelopes: Iterable[EnvelopeT]) -> dict[str, list[EnvelopeT]]:
    """A batch's events per tenant (a batch may mix tenants; each is handled as its own), in
    the batch's order, tenants sorted: the order a consumer locks and writes them in."""
    groups: dict[str, list[EnvelopeT]] = {}
    for envelope in envelopes:
        groups.setdefault(envelope.tenant, []).append(envelope)
    return dict(sorted(groups.items()))


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
