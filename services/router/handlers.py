"""Kafka side of the router: dedupe -> lock -> decide -> apply -> commit -> relay.

One transaction per partition batch locks the batch's conversations (and the crises of their
topics), asks the pure decider what each mention changes, and writes the effects (cases,
mentions, outbox, webhook deliveries, timers); only after it commits is the Kafka offset
committed. A redelivered mention is recognised by its id and skipped. Due timers are taken by
`fire_due_timers` (FOR UPDATE SKIP LOCKED) and go through the same decider and applier, so an
sla.breached is published once per clock however many routers run. The outbox relay then
publishes the events to Kafka, so a crash between the commit and the publish loses nothing.
Every event is handled under its envelope's tenant (a batch that mixes tenants has one
transaction per tenant), and every timer under its own tenant.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from services.router import context_store, repository
from services.router.applier import Applier
from services.router.core import (
    ActionInput,
    ActionRefused,
    EmitCaseEvent,
    MentionInput,
    Playbook,
    RecordMention,
    Timer,
    TimerInput,
    decide,
)
from services.router.core.actions import suggested_next_step
from services.router.core.agents import Presence
from services.router.core.assignment import Staff, next_case_for, roster
from services.router.core.context import private_key
from services.router.core.customers import combine, relate
from services.router.core.effects import TimerKind
from services.router.core.sla import sla_state
from services.router.metrics import (
    CASE_EVENTS,
    MENTIONS_DUPLICATE,
    MENTIONS_ROUTED,
    TIMERS_FAILED,
    TIMERS_FIRED,
)
from shared.db import Database
from shared.events import (
    ActionKind,
    AgentAction,
    Author,
    Case,
    Envelope,
    EventType,
    HandoffPackage,
    HandoffTarget,
    Mention,
    MentionClassified,
    MentionKind,
    TraceContext,
    by_tenant,
    new_envelope,
    stable_id,
    utcnow,
)
from shared.failpoints import failpoint
from shared.kafka import EventProducer

log = logging.getLogger(__name__)
OUTBOX_BATCH = 500
# A handoff package holds up to this many mentions and history entries of the case.
HANDOFF_MENTIONS = 1000
HANDOFF_HISTORY = 1000
TIMER_BATCH = 500
# `next` ranks at most this many open unassigned cases (earliest first-response deadline first).
NEXT_CANDIDATES = 200
# Published case events stay in the outbox a day, and fired timers a week, for inspection.
OUTBOX_KEPT = timedelta(days=1)
FIRED_TIMERS_KEPT = timedelta(days=7)
# Writes something of the caller's (an audit entry) in the same transaction as an action.
Recorder = Callable[[AsyncConnection], Awaitable[None]]


def count_committed(applied: Applier, duplicates: int, routed: Counter[str]) -> None:
    """Metrics of a batch, counted once its transaction has committed (a batch retried after a
    failed commit must not be counted twice)."""
    MENTIONS_DUPLICATE.inc(duplicates)
    for kind, n in routed.items():
        MENTIONS_ROUTED.labels(kind).inc(n)
    for labels, n in applied.case_events.items():
        CASE_EVENTS.labels(*labels).inc(n)


class ReplySender(Protocol):
    """Sends the brand's reply on the platform (X, Meta, e-mail...): one adapter per platform.
    The reply is recorded in the case whether or not an adapter sends it."""

    async def send(self, case: Case, reply: Mention) -> None: ...


class LoggedReplies:
    """No platform adapter configured: the reply is recorded and logged, for an agent to post."""

    async def send(self, case: Case, reply: Mention) -> None:
        log.info(
            "reply recorded, not sent (no platform adapter)",
            extra={"case_id": str(case.case_id), "mention_id": str(reply.mention_id)},
        )


class CaseRouter:
    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        playbook: Playbook,
        deliveries_due: asyncio.Event,
        *,
        outbox_batch: int = OUTBOX_BATCH,
        alert_past_deadlines: bool = True,
        replies: ReplySender | None = None,
    ) -> None:
        self._db = db
        self._producer = producer
        self._playbook = playbook
        self._deliveries_due = deliveries_due
        self._outbox_batch = outbox_batch
        self._alert_past_deadlines = alert_past_deadlines
        self._replies = replies or LoggedReplies()
        self._outbox_lock = asyncio.Lock()

    async def handle(
        self, envelopes: list[Envelope[MentionClassified]], *, record: Recorder | None = None
    ) -> None:
        # Each event is handled under its envelope's tenant, each tenant of a batch in its own
        # transaction: a failed one redoes the batch, and what committed is then known.
        applied = [
            await self._route(tenant, group, record)
            for tenant, group in by_tenant(envelopes).items()
        ]
        failpoint("router.after_commit")
        if any(applier is not None and applier.deliveries for applier in applied):
            self._deliveries_due.set()
        await self.relay_outbox()
        for applier in applied:
            if applier is not None:
                await self._send_replies(applier)

    async def _send_replies(self, applied: Applier) -> None:
        """Automatic acknowledgements, once committed (recorded in the conversation either
        way). A platform that refuses one must not hold up the stream: it is logged."""
        for sent in applied.replies:
            try:
                await self._replies.send(sent.case, sent.reply)
            except Exception:
                log.exception(
                    "automatic acknowledgement not sent",
                    extra={"case_id": str(sent.case.case_id)},
                )

    async def _route(
        self,
        tenant: str,
        envelopes: list[Envelope[MentionClassified]],
        record: Recorder | None = None,
    ) -> Applier | None:
        """Route one tenant's events of the batch in one transaction; the applier that wrote
        them (None: all known)."""
        routed: Counter[str] = Counter()
        async with self._db.begin() as conn:
            if record is not None:
                await record(conn)
            # Lock the conversations first, then ask which mentions are known: a member that
            # lost its partitions but still runs a batch (session timeout) waits here for the
            # new owner's transaction and then sees its mentions, instead of applying them twice.
            conversations = sorted({e.data.mention.conversation_key for e in envelopes})
            await repository.lock_keys(
                conn,
                repository.CONVERSATION_LOCKS,
                [f"{tenant}|{key}" for key in conversations],
            )
            own = await repository.cases_for_update(conn, tenant, conversations)
            # A conversation with no case of its own, or whose case was merged, goes to the
            # case it was joined to (a merge's survivor, a linked private thread's case).
            joined = await context_store.joined_cases_for_update(
                conn,
                tenant,
                [key for key in conversations if key not in own or own[key].merged_into],
            )
            current = own | joined
            known = await repository.known_mentions(
                conn, [e.data.mention.mention_id for e in envelopes]
            )
            fresh: dict[uuid.UUID, Envelope[MentionClassified]] = {}
            for envelope in envelopes:
                mention_id = envelope.data.mention.mention_id
                if mention_id not in known and mention_id not in fresh:
                    fresh[mention_id] = envelope
            duplicates = len(envelopes) - len(fresh)
            if not fresh:
                count_committed(Applier(tenant, []), duplicates, routed)
                return None
            topics = sorted(
                {
                    e.data.classification.topic_key
                    for e in fresh.values()
                    if e.data.classification and e.data.classification.topic_key
                }
            )
            await repository.lock_keys(
                conn, repository.CRISIS_TOPIC_LOCKS, [f"{tenant}|{t}" for t in topics]
            )
            crises = await repository.open_crises_for_update(conn, tenant, topics)
            customers = await context_store.CustomerBook.load(
                conn,
                tenant,
                self._playbook,
                [e.data.mention for e in fresh.values() if e.data.classification is not None],
                joined.values(),
            )
            staff = await self._staff(conn, tenant, self._playbook.assignment.automatic)
            applier = Applier(tenant, await repository.subscriptions(conn, tenant))
            now = utcnow()
            for envelope in fresh.values():
                item = envelope.data
                key = item.mention.conversation_key
                topic = item.classification.topic_key if item.classification else None
                decision = decide(
                    current.get(key),
                    MentionInput(
                        item,
                        tenant,
                        crisis=crises.get(topic) if topic else None,
                        alert_past_deadlines=self._alert_past_deadlines,
                        customer=customers.of(item.mention) if item.classification else None,
                        own_generation=own[key].generation if key in own else None,
                    ),
                    self._playbook,
                    now,
                    staff,
                )
                applier.apply(
                    decision.case, decision.effects, envelope.trace, source_event_id=envelope.id
                )
                if staff is not None:
                    staff = staff.after(current.get(key), decision.case, decision.effects)
                if decision.case is not None:
                    # Every conversation of the case (its own, joined ones) sees the change.
                    for other, case in current.items():
                        if case.case_id == decision.case.case_id:
                            current[other] = decision.case
                    current[key] = decision.case
                if item.classification is not None:
                    recorded = next(
                        e.case_id for e in decision.effects if isinstance(e, RecordMention)
                    )
                    into = decision.case
                    if into and recorded == into.case_id and into.conversation_key != key:
                        customers.join(item.mention, into)  # a linked thread's author
                    customers.observe(
                        item,
                        recorded,
                        opened=any(
                            isinstance(e, EmitCaseEvent) and e.event_type is EventType.CASE_CREATED
                            for e in decision.effects
                        ),
                    )
                for crisis in applier.crises.values():
                    crises[crisis.topic_key] = crisis
                routed[item.mention.kind.value] += 1
            await customers.save(conn)  # before the flush: the webhooks carry the profiles
            await applier.flush(conn)
        count_committed(applier, duplicates, routed)
        return applier

    async def fire_due_timers(self, limit: int = TIMER_BATCH) -> int:
        """Act on due timers of every tenant, once each across router replicas, each under its
        timer's tenant; how many were acted on (a timer whose case or crisis a mention batch
        holds waits for the next round)."""
        now = utcnow()
        fired: list[Timer] = []
        appliers: list[Applier] = []
        async with self._db.begin() as conn:
            due = await repository.take_due_timers(conn, now, limit)
            if not due:
                return 0
            tenants: dict[str, list[Timer]] = {}
            for timer in due:
                tenants.setdefault(timer.tenant, []).append(timer)
            for tenant, timers in sorted(tenants.items()):
                applier = Applier(tenant, await repository.subscriptions(conn, tenant))
                fired += await self._fire_tenant_timers(conn, applier, timers, now)
                await applier.flush(conn)
                appliers.append(applier)
            await repository.mark_timers_fired(conn, [t.timer_id for t in fired], now)
        for timer in fired:
            TIMERS_FIRED.labels(timer.kind.value).inc()
        for applier in appliers:
            count_committed(applier, 0, Counter())
        if any(applier.deliveries for applier in appliers):
            self._deliveries_due.set()
        if any(applier.outbox for applier in appliers):
            await self.relay_outbox()
        return len(fired)

    async def _fire_tenant_timers(
        self, conn: AsyncConnection, applier: Applier, due: list[Timer], now: datetime
    ) -> list[Timer]:
        """One tenant's due timers through the decider into its applier; the timers acted on
        (or parked because the playbook cannot act on them)."""
        cases, busy = await repository.cases_by_id_for_update(
            conn, applier.tenant, sorted({t.case_id for t in due if t.case_id})
        )
        # Only crisis timers read their crisis: an SLA timer of a crisis case must not wait
        # for the crisis row, which every batch of a burst holds.
        crisis_of = {t.timer_id: self._crisis_of(t, cases) for t in due}
        crises, busy_crises = await repository.crises_by_id_for_update(
            conn, sorted({c for c in crisis_of.values() if c is not None})
        )
        staff = await self._staff(
            conn,
            applier.tenant,
            self._playbook.assignment.automatic or any(t.kind is TimerKind.REASSIGN for t in due),
        )
        fired: list[Timer] = []
        for timer in due:
            crisis_id = crisis_of[timer.timer_id]
            if timer.case_id in busy or crisis_id in busy_crises:
                continue  # a mention batch holds its case or crisis: the next round
            case = cases.get(timer.case_id) if timer.case_id else None
            crisis = crises.get(crisis_id) if crisis_id else None
            try:
                decision = decide(
                    case, TimerInput(timer, crisis=crisis), self._playbook, now, staff
                )
            except Exception:
                # A timer the playbook cannot act on (it changed since) is parked, logged,
                # and counted; it must not stop every timer behind it.
                log.exception("timer failed", extra={"timer_id": str(timer.timer_id)})
                TIMERS_FAILED.inc()
                fired.append(timer)
                continue
            applier.apply(decision.case, decision.effects, TraceContext.new())
            if staff is not None:
                staff = staff.after(case, decision.case, decision.effects)
            if decision.case is not None:
                cases[decision.case.case_id] = decision.case
            crises.update(applier.crises)
            fired.append(timer)
        return fired

    @staticmethod
    def _crisis_of(timer: Timer, cases: dict[uuid.UUID, Case]) -> uuid.UUID | None:
        if timer.crisis_id is not None:
            return timer.crisis_id
        case = cases.get(timer.case_id) if timer.case_id else None
        return case.crisis_id if case is not None and timer.trigger == "crisis" else None

    async def act(
        self,
        tenant: str,
        case_id: uuid.UUID,
        action: AgentAction,
        *,
        handoff_queue: str | None = None,
        record: Recorder | None = None,
        queues: frozenset[str] | None = None,
    ) -> Case:
        """An agent's action on one of `tenant`'s cases through the decider, in one transaction
        (with what `record` writes); the case after it. Raises ActionRefused (no such case, or
        the action does not apply), and then nothing is written. A case a merge or link
        touches must be in `queues` (None: all) too, else it is not found."""
        async with self._db.begin() as conn:
            if record is not None:
                await record(conn)
            found = await repository.case_by_id(conn, tenant, case_id)
            if found is None:
                raise ActionRefused(f"no case {case_id}", status=404)
            keys = [
                found.case.conversation_key,
                *await self._joining(conn, tenant, found.case, action, queues),
            ]
            await repository.lock_keys(
                conn, repository.CONVERSATION_LOCKS, [f"{tenant}|{k}" for k in keys]
            )
            case = await repository.case_for_update(conn, tenant, case_id)
            package = None
            if case is not None and action.kind is ActionKind.HANDOFF:
                package = await self._handoff_package(conn, case, action, handoff_queue)
            other = await self._other_case(conn, tenant, action, keys[1:], queues)
            if action.kind is ActionKind.MERGE and case is not None and other is not None:
                # Customers before the assignment lock, as routing takes them: no lock cycle.
                await self._lock_customers(conn, tenant, case, other)
            staff = await self._staff(conn, tenant, self._playbook.assignment.automatic)
            decision = decide(
                case, ActionInput(action, package, other), self._playbook, utcnow(), staff
            )
            if action.kind is ActionKind.MERGE and decision.case is not None and other:
                await self._join_customers(conn, tenant, decision.case, other)
            applier = Applier(tenant, await repository.subscriptions(conn, tenant))
            applier.apply(decision.case, decision.effects, TraceContext.new())
            await applier.flush(conn)
        count_committed(applier, 0, Counter())
        if applier.deliveries:
            self._deliveries_due.set()
        await self.relay_outbox()
        assert decision.case is not None
        return decision.case

    # -- merge and link ---------------------------------------------------------------------

    async def _joining(
        self,
        conn: AsyncConnection,
        tenant: str,
        case: Case,
        action: AgentAction,
        queues: frozenset[str] | None,
    ) -> list[str]:
        """The other conversation a merge or a link touches (locked with the case's own)."""
        if action.kind is ActionKind.LINK and action.conversation_id:
            return [private_key(case, action.conversation_id)]
        if action.kind is ActionKind.MERGE and action.other_case:
            other = await repository.case_by_id(conn, tenant, action.other_case)
            visible = other is not None and (queues is None or other.case.queue in queues)
            return [other.case.conversation_key] if other and visible else []
        return []

    async def _other_case(
        self,
        conn: AsyncConnection,
        tenant: str,
        action: AgentAction,
        keys: list[str],
        queues: frozenset[str] | None,
    ) -> Case | None:
        """A merge's case to absorb; a link's private thread's own case, if it has one. A case
        outside `queues` is not found (a link to its thread is refused without naming it)."""
        if action.kind is ActionKind.MERGE and action.other_case and keys:
            return await repository.case_for_update(conn, tenant, action.other_case)
        if action.kind is ActionKind.LINK and keys:
            own = await repository.cases_for_update(conn, tenant, keys)
            joined = await context_store.joined_cases_for_update(conn, tenant, keys)
            found = (own | joined).get(keys[0])
            if found is not None and queues is not None and found.queue not in queues:
                raise ActionRefused(f"{keys[0]} already goes to another case", status=409)
            return found
        return None

    async def _lock_customers(
        self, conn: AsyncConnection, tenant: str, case: Case, other: Case
    ) -> None:
        identities = [context_store.case_identity(c) for c in (case, other)]
        ids = await context_store.customer_ids(conn, tenant, identities)
        await context_store.profiles(conn, tenant, list(ids.values()), lock=True)

    async def _join_customers(
        self, conn: AsyncConnection, tenant: str, survivor: Case, absorbed: Case
    ) -> None:
        """The customers of two merged cases are one: the absorbed case's profile (its
        identities, history, mood) joins the survivor's."""
        identities = [context_store.case_identity(c) for c in (survivor, absorbed)]
        ids = await context_store.customer_ids(conn, tenant, identities)
        kept_id, gone_id = (ids[context_store.identity_key(i)] for i in identities)
        if kept_id == gone_id:
            return
        found = await context_store.profiles(conn, tenant, [kept_id, gone_id], lock=True)
        kept, gone = found.get(kept_id), found.get(gone_id)
        if kept is None or gone is None:
            return  # a profile starts with the customer's first mention: nothing to join yet
        joined = relate(combine(kept, gone), self._playbook)
        await context_store.save_profiles(
            conn, [joined, gone.model_copy(update={"merged_into": kept_id})]
        )

    async def _handoff_package(
        self, conn: AsyncConnection, case: Case, action: AgentAction, queue: str | None
    ) -> HandoffPackage:
        """The case's whole story for the next hop: the customer, every mention with its
        classification and routing, the agents' notes, the clocks and a suggested next step."""
        try:
            target = HandoffTarget(action.target or "")
        except ValueError:
            known = [t.value for t in HandoffTarget]
            raise ActionRefused(f"handoff target must be one of {known}", status=422) from None
        mentions = await repository.mentions_of_case(conn, case.case_id, HANDOFF_MENTIONS)
        history = await repository.history_of_case(conn, case.case_id, HANDOFF_HISTORY)
        notes = [
            str(h.detail["action"]["text"])
            for h in history
            if h.detail.get("action", {}).get("kind") == ActionKind.NOTE.value
        ]
        customers = [m.mention["author"] for m in mentions if m.mention["kind"] != "reply"]
        customer = customers[0] | {"mentions": len(customers)} if customers else {}
        profile = await context_store.profile_of_case(conn, case.tenant, case)
        if profile is not None:  # history, sentiment trend, relationship, reach, VIP
            customer["profile"] = profile.model_dump(mode="json")
        return HandoffPackage(
            target=target,
            queue=queue,
            reason=action.text or "",
            customer=customer,
            conversation=[vars(m) for m in mentions],
            notes=notes,
            clocks=case.clocks,
            sla_state=sla_state(case),
            suggested_next_step=suggested_next_step(target, case, queue),
        )

    async def reply(
        self, case: Case, action: AgentAction, *, record: Recorder | None = None
    ) -> None:
        """The brand's answer written by an agent: recorded as a reply in the conversation (it
        stops the response clock like a reply seen on the platform), with what `record` writes
        in the same transaction; sending it is the platform adapter's part. The reply is threaded
        into the case's own tenant."""
        conversation_id = case.conversation_key.split(":", 1)[1]
        mention = Mention(
            mention_id=stable_id(
                "agent-reply", case.tenant, str(case.case_id), str(action.action_id)
            ),
            channel=case.channel,
            kind=MentionKind.REPLY,
            platform_id=f"agent-reply:{action.action_id}",
            conversation_id=conversation_id,
            text=action.text or "",
            author=Author(handle=action.actor),
            created_at=action.at,
        )
        envelope = new_envelope(
            EventType.MENTION_CLASSIFIED,
            MentionClassified(mention=mention, classification=None),
            tenant=case.tenant,
            subject=case.conversation_key,
            trace=TraceContext.new(),
            event_id=stable_id(
                "agent-reply-event", case.tenant, str(case.case_id), str(action.action_id)
            ),
        )
        await self.handle([envelope], record=record)
        await self._replies.send(case, mention)

    async def relay_outbox(self) -> int:
        """Publish case events not yet on Kafka, oldest first; safe to call from anywhere.

        One relay at a time across replicas (an advisory lock held while publishing), so the
        events of a case reach Kafka in the order they were committed. The lock is only tried:
        the consumer's batch never waits on another replica's publish (a slow broker would hold
        it), and the relay timer picks up whatever the running relay had already passed.
        """
        published = 0
        async with self._outbox_lock:
            while True:
                async with self._db.begin() as conn:
                    if not await repository.lock_outbox_relay(conn):
                        return published  # another replica relays; it reads our rows too
                    rows = await repository.unpublished_outbox(conn, self._outbox_batch)
                    if not rows:
                        return published
                    await self._producer.publish_encoded(
                        [(row.topic, row.key, row.value) for row in rows]
                    )
                    await repository.mark_outbox_published(
                        conn, [row.event_id for row in rows], utcnow()
                    )
                published += len(rows)

    async def prune(self) -> None:
        async with self._db.begin() as conn:
            await repository.prune_outbox(conn, utcnow() - OUTBOX_KEPT)
            await repository.prune_timers(conn, utcnow() - FIRED_TIMERS_KEPT)

    # -- agents and assignment -------------------------------------------------------------

    @property
    def playbook(self) -> Playbook:
        return self._playbook

    async def _staff(self, conn: AsyncConnection, tenant: str, needed: bool) -> Staff | None:
        """The agents and their loads, under the tenant's assignment lock (held to the commit),
        when the transaction's decisions may assign."""
        if not needed:
            return None
        await repository.lock_assignment(conn, tenant)
        return await self._read_staff(conn, tenant)

    async def _read_staff(self, conn: AsyncConnection, tenant: str) -> Staff:
        stored = await repository.stored_agents(conn, tenant)
        return Staff(
            roster(self._playbook.assignment, stored),
            await repository.agent_loads(conn, tenant),
        )

    async def staff(self, tenant: str) -> Staff:
        """The tenant's agents (the playbook's merged with the API's) and their loads."""
        async with self._db.begin() as conn:
            return await self._read_staff(conn, tenant)

    async def claim_next(
        self, tenant: str, agent_id: str, queues: frozenset[str] | None = None
    ) -> Case | None:
        """Assign the agent the open unassigned case closest to breach that it may take (and,
        with `queues`, that the caller's key sees); None when there is none. Two agents asking
        at once never get the same case: claims hold the tenant's assignment lock, and cases a
        batch holds are skipped."""
        now = utcnow()
        async with self._db.begin() as conn:
            staff = await self._staff(conn, tenant, True)
            assert staff is not None
            agent = staff.agents.get(agent_id)
            if agent is None:
                raise ActionRefused(f"no agent {agent_id}", status=404)
            if agent.presence is not Presence.ONLINE:
                raise ActionRefused(
                    f"agent {agent_id} is {agent.presence.value}: only online agents take cases",
                    status=409,
                )
            if staff.load(agent_id) >= agent.capacity:
                raise ActionRefused(
                    f"agent {agent_id} is at capacity ({agent.capacity} open cases)", status=409
                )
            serves = set(agent.queues or self._playbook.queues)
            if queues is not None:
                serves &= queues
            if not serves:
                return None
            candidates = await repository.unassigned_cases_for_update(
                conn, tenant, agent.languages, sorted(serves), NEXT_CANDIDATES
            )
            case = next_case_for(agent, candidates, staff, self._playbook.assignment, now)
            if case is None:
                return None
            action = AgentAction(
                action_id=uuid.uuid4(),
                kind=ActionKind.ASSIGN,
                actor=agent_id,
                at=now,
                assignee=agent_id,
                text="next: the case closest to breach",
            )
            decision = decide(case, ActionInput(action), self._playbook, now, staff)
            applier = Applier(tenant, await repository.subscriptions(conn, tenant))
            applier.apply(decision.case, decision.effects, TraceContext.new())
            await applier.flush(conn)
        count_committed(applier, 0, Counter())
        if applier.deliveries:
            self._deliveries_due.set()
        await self.relay_outbox()
        return decision.case
