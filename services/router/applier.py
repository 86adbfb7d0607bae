"""The one place where the decider's effects become rows: cases, mentions with their routing
trace, case and crisis events (outbox) with their webhook deliveries, timers and crises, joined
conversations. Effects are collected over a batch and written in the caller's transaction by
`flush`, which also gives each case webhook its context (the conversation so far, bounded, and
the customer's profile) once the batch's mentions are written."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router import context_store, repository
from services.router.core import (
    AgentAssigned,
    CancelTimers,
    Effect,
    EmitCaseEvent,
    EmitCrisisEvent,
    RecordMention,
    SaveCrisis,
    StartTimer,
    Timer,
)
from services.router.core.context import window
from services.router.core.effects import JoinConversations, SaveCase, SendReply
from shared.events import (
    Case,
    CaseEvent,
    Crisis,
    Envelope,
    EventType,
    TraceContext,
    new_envelope,
    stable_id,
    utcnow,
)
from shared.topics import CASES, CRISES


def webhook_body(event: Envelope[Any], context: dict[str, Any] | None = None) -> bytes:
    """Standard Webhooks payload: `type`, `timestamp`, `data` (the event's payload, and for a
    case event its context as JSON, a CaseContext: the conversation so far, the customer)."""
    data = event.data.model_dump(mode="json", exclude={"mention": {"raw"}}) | {
        "event_id": str(event.id),
        "trace_id": event.trace.trace_id,
    }
    if context is not None:
        data |= context
    return orjson.dumps(
        {"type": event.type.value, "timestamp": event.occurred_at.isoformat(), "data": data}
    )


def history_detail(payload: CaseEvent) -> dict[str, Any]:
    """What a case event adds to the case's history: the mention, routing, clock, escalation or
    agent action behind it."""
    detail = payload.model_dump(mode="json", include={"routing", "sla", "escalation", "action"})
    if payload.mention is not None:
        detail["mention_id"] = str(payload.mention.mention_id)
        detail["kind"] = payload.mention.kind.value
    return {key: value for key, value in detail.items() if value is not None}


@dataclass
class Applier:
    tenant: str
    endpoints: list[repository.Subscription]
    cases: dict[uuid.UUID, Case] = field(default_factory=dict)
    crises: dict[uuid.UUID, Crisis] = field(default_factory=dict)
    mentions: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    timers: dict[uuid.UUID, Timer] = field(default_factory=dict)
    cancels: list[CancelTimers] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    # Each agent's latest assignment in the batch.
    assigned: dict[str, datetime] = field(default_factory=dict)
    joins: list[JoinConversations] = field(default_factory=list)
    # Messages to send on the platform once the transaction has committed.
    replies: list[SendReply] = field(default_factory=list)
    # Case events whose deliveries get their body (with the context) at flush.
    _contextual: list[tuple[Envelope[Any], CaseEvent, list[dict[str, Any]]]] = field(
        default_factory=list
    )
    _sequences: dict[uuid.UUID, int] = field(default_factory=dict)
    # (event type, priority, queue) of each case event, counted once the batch commits.
    case_events: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def apply(
        self,
        case: Case | None,
        effects: list[Effect],
        trace: TraceContext,
        *,
        source_event_id: uuid.UUID | None = None,
    ) -> None:
        if case is not None:
            self._keep(case)
        for effect in effects:
            if isinstance(effect, EmitCaseEvent):
                effect = self._numbered(effect)
            match effect:
                case RecordMention(item=item, case_id=case_id, routing=routing):
                    self.mentions.append(
                        {
                            "mention_id": item.mention.mention_id,
                            "case_id": case_id,
                            "event_id": effect.event_id
                            or source_event_id
                            or stable_id("mention", str(item.mention.mention_id)),
                            "kind": item.mention.kind.value,
                            "created_at": item.mention.created_at,
                            "mention": item.mention.model_dump(mode="json"),
                            "classification": (
                                item.classification.model_dump(mode="json")
                                if item.classification
                                else None
                            ),
                            "routing": routing.model_dump(mode="json") if routing else None,
                        }
                    )
                case EmitCaseEvent(event_type=event_type, payload=payload, cause=cause):
                    # The case is part of the id: two cases escalated by the same ladder step
                    # at the same deadline are two events.
                    owner = str(payload.case.case_id)
                    event = self._emit(
                        event_type,
                        payload,
                        topic=CASES.name,
                        key=payload.case.conversation_key,
                        event_id=stable_id(event_type.value, owner, cause),
                        trace=trace,
                    )
                    self.case_events[
                        (event_type.value, payload.case.priority.value, payload.case.queue)
                    ] += 1
                    self.history.append(
                        {
                            "event_id": event.id,
                            "case_id": payload.case.case_id,
                            "type": event_type.value,
                            "occurred_at": event.occurred_at,
                            "detail": history_detail(payload),
                        }
                    )
                case EmitCrisisEvent(event_type=event_type, payload=payload, cause=cause):
                    self._emit(
                        event_type,
                        payload,
                        topic=CRISES.name,
                        key=payload.crisis.topic_key,
                        event_id=stable_id(event_type.value, cause),
                        trace=trace,
                    )
                case StartTimer(timer=timer):
                    self.timers[timer.timer_id] = timer
                case CancelTimers(case_id=case_id, clock=clock):
                    self.cancels.append(effect)
                    for timer_id, timer in list(self.timers.items()):
                        if timer.case_id == case_id and timer.clock is clock:
                            del self.timers[timer_id]
                case SaveCrisis(crisis=crisis):
                    self.crises[crisis.crisis_id] = crisis
                case AgentAssigned(agent_id=agent_id, at=at):
                    self.assigned[agent_id] = max(at, self.assigned.get(agent_id, at))
                case SaveCase(case=other):
                    self._keep(other)
                case JoinConversations():
                    self.joins.append(effect)
                case SendReply():
                    self.replies.append(effect)

    def _keep(self, case: Case) -> None:
        """Store the case, with the latest sequence number this batch gave its events."""
        numbered = self._sequences.get(case.case_id)
        if numbered is not None and numbered > case.sequence:
            case = case.model_copy(update={"sequence": numbered})
        self.cases[case.case_id] = case

    def _numbered(self, effect: EmitCaseEvent) -> EmitCaseEvent:
        """The event with the case's next sequence number, which the stored case keeps."""
        case = effect.payload.case
        sequence = self._sequences.get(case.case_id, case.sequence) + 1
        self._sequences[case.case_id] = sequence
        stored = self.cases.get(case.case_id)
        if stored is not None:
            self.cases[case.case_id] = stored.model_copy(update={"sequence": sequence})
        payload = effect.payload.model_copy(
            update={"case": case.model_copy(update={"sequence": sequence})}
        )
        return EmitCaseEvent(effect.event_type, payload, effect.cause)

    def _emit(
        self,
        event_type: EventType,
        payload: BaseModel,
        *,
        topic: str,
        key: str,
        event_id: uuid.UUID,
        trace: TraceContext,
    ) -> Envelope[Any]:
        event = new_envelope(
            event_type,
            payload,
            tenant=self.tenant,
            subject=key,
            trace=trace.child(),
            event_id=event_id,
        )
        self.outbox.append(
            {"event_id": event.id, "topic": topic, "key": key.encode(), "value": event.to_bytes()}
        )
        contextual = payload if isinstance(payload, CaseEvent) else None
        body = None if contextual else webhook_body(event)  # a case event's: at flush
        queue, priority = (
            (payload.case.queue, payload.case.priority.value)
            if isinstance(payload, CaseEvent)
            else (None, None)
        )
        rows: list[dict[str, Any]] = []
        for endpoint in self.endpoints:
            if endpoint.wants(event.type.value, queue, priority):
                rows.append(
                    {
                        "delivery_id": stable_id(
                            "delivery", str(endpoint.endpoint_id), str(event.id)
                        ),
                        "endpoint_id": endpoint.endpoint_id,
                        "event_id": event.id,
                        "event_type": event.type.value,
                        "body": body,
                        "status": "pending",
                        "next_attempt_at": utcnow(),
                    }
                )
        self.deliveries += rows
        if contextual is not None and rows:
            self._contextual.append((event, contextual, rows))
        return event

    async def flush(self, conn: AsyncConnection) -> None:
        await repository.upsert_cases(conn, list(self.cases.values()))
        await repository.upsert_crises(conn, list(self.crises.values()))
        await repository.add_mentions(conn, self.mentions)
        for join in self.joins:
            await context_store.join_conversations(
                conn, join.tenant, join.case_id, join.conversation_keys, join.absorbed
            )
        for cancel in self.cancels:
            await repository.cancel_timers(conn, cancel.case_id, cancel.clock.value)
        await repository.add_timers(conn, list(self.timers.values()))
        await repository.add_outbox(conn, self.outbox)
        await repository.add_case_events(conn, self.history)
        await self._contextual_bodies(conn)
        await repository.enqueue_deliveries(conn, self.deliveries)
        await repository.mark_assigned(conn, self.tenant, self.assigned)

    async def _contextual_bodies(self, conn: AsyncConnection) -> None:
        """Each case webhook's body with the conversation as of its event (the batch's
        mentions are written by now) and the customer's profile (saved before the flush)."""
        if not self._contextual:
            return
        cases = {payload.case.case_id: payload.case for _, payload, _ in self._contextual}
        # A merged case's conversation is its survivor's now.
        owners = {case_id: c.merged_into or case_id for case_id, c in cases.items()}
        recorded = Counter(m["case_id"] for m in self.mentions if m["case_id"] is not None)
        latest = await context_store.latest_conversations(
            conn, owners.values(), max(recorded.values(), default=0)
        )
        identities = {case_id: context_store.case_identity(c) for case_id, c in cases.items()}
        ids = await context_store.customer_ids(conn, self.tenant, identities.values())
        profiles = {
            customer_id: profile.model_dump(mode="json")
            for customer_id, profile in (
                await context_store.profiles(conn, self.tenant, ids.values())
            ).items()
        }
        for event, payload, rows in self._contextual:
            case = payload.case
            owner = owners[case.case_id]
            stored, total = latest.get(owner, ([], 0))
            entries = [(mention_id, orjson.Fragment(text)) for mention_id, text in stored]
            identity = identities[case.case_id]
            context = {
                "conversation": window(
                    owner,
                    entries,
                    total,
                    upto=payload.mention.mention_id if payload.mention else None,
                ),
                "customer": profiles.get(ids[context_store.identity_key(identity)]),
            }
            body = webhook_body(event, context)
            for row in rows:
                row["body"] = body
