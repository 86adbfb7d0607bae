"""What a decision asks the world to do, as plain values. The router's applier turns them into
rows (case, outbox, webhook deliveries, timers, crises) inside the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.events import (
    Case,
    CaseEvent,
    ClockKind,
    Crisis,
    CrisisEvent,
    EventType,
    Mention,
    MentionClassified,
    Routing,
    stable_id,
)


class TimerKind(StrEnum):
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    ESCALATION = "escalation"  # a ladder step that waits
    INACTIVITY = "inactivity"  # resolve a case nobody wrote in
    CRISIS_QUIET = "crisis_quiet"  # close a crisis that went quiet
    REASSIGN = "reassign"  # the assignee has not answered before the SLA warning
    WIDEN = "widen"  # an unassigned case may now go to agents with the skill as a secondary one


class Timer(BaseModel):
    """A future input to the decider. Timers are never updated: when the case moves on, the
    decider finds a fired timer stale (its anchor no longer matches) and does nothing."""

    model_config = ConfigDict(frozen=True)

    timer_id: uuid.UUID
    kind: TimerKind
    due_at: AwareDatetime
    tenant: str
    subject: str  # the conversation key, or the crisis's topic key
    case_id: uuid.UUID | None = None
    crisis_id: uuid.UUID | None = None
    clock: ClockKind | None = None
    # What the timer was set against: the clock's deadline, the last brand answer, the crisis's
    # last signal; the timer is stale when it changed.
    anchor: AwareDatetime
    ladder: str | None = None  # an escalation timer's ladder, as it was when armed
    step: int | None = None  # ... and its step
    # What armed it, where the same anchor may be armed again (a re-armed clock, a second
    # reply with the same time): part of the id, so the new timer is not taken for the old.
    round: str | None = None
    trigger: str | None = None  # warning | breach | crisis

    @classmethod
    def make(
        cls, kind: TimerKind, *, owner: uuid.UUID, anchor: datetime, **fields: object
    ) -> Timer:
        """Deterministic id: the same decision made twice arms one timer."""
        parts = [str(fields.get(name)) for name in ("clock", "ladder", "trigger", "step", "round")]
        timer_id = stable_id("timer", str(owner), kind.value, anchor.isoformat(), *parts)
        return cls(timer_id=timer_id, kind=kind, anchor=anchor, **fields)


@dataclass(frozen=True)
class EmitCaseEvent:
    """Publish a case event (outbox) and deliver it to the subscribed webhooks."""

    event_type: EventType
    payload: CaseEvent
    # What makes the event unique (its id is derived from it): a mention id, a timer id, ...
    cause: str


@dataclass(frozen=True)
class EmitCrisisEvent:
    event_type: EventType
    payload: CrisisEvent
    cause: str


@dataclass(frozen=True)
class StartTimer:
    timer: Timer


@dataclass(frozen=True)
class CancelTimers:
    """Drop a case's pending timers of these kinds (an answered clock's warning and breach)."""

    case_id: uuid.UUID
    clock: ClockKind


@dataclass(frozen=True)
class SaveCrisis:
    crisis: Crisis


@dataclass(frozen=True)
class RecordMention:
    """Keep the mention with its routing trace, whether or not it opened a case."""

    item: MentionClassified
    case_id: uuid.UUID | None
    routing: Routing | None
    # The event it came in; None: the input's (an acknowledgement the router made has its own).
    event_id: uuid.UUID | None = None


@dataclass(frozen=True)
class AgentAssigned:
    """An agent was given a case: when, so the longest idle goes first next time."""

    agent_id: str
    at: datetime


@dataclass(frozen=True)
class SaveCase:
    """Another case the decision changed besides its own: the case a merge absorbed."""

    case: Case


@dataclass(frozen=True)
class JoinConversations:
    """Route these conversations' later mentions to the case (a merged case's conversations, a
    linked private thread). On a merge, the absorbed case's mentions and joins move too."""

    tenant: str
    case_id: uuid.UUID
    conversation_keys: tuple[str, ...]
    absorbed: uuid.UUID | None = None


@dataclass(frozen=True)
class SendReply:
    """Send the brand's message on the platform once the transaction has committed (an
    automatic acknowledgement; it is recorded in the conversation by a RecordMention)."""

    case: Case
    reply: Mention


Effect = (
    EmitCaseEvent
    | EmitCrisisEvent
    | StartTimer
    | CancelTimers
    | SaveCrisis
    | RecordMention
    | AgentAssigned
    | SaveCase
    | JoinConversations
    | SendReply
)
