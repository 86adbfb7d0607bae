"""The router's decider: `decide(case, input, playbook, now) -> Decision(case, effects)`.

Inputs are a classified mention (with the crisis of its topic, if one is open), a fired timer, or
an agent's action. Nothing here does I/O: the handler loads the case, calls `decide`
and hands the effects to the applier inside its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.router.core.actions import ActionRefused, act
from services.router.core.assignment import (
    ROUTER_ACTOR,
    Staff,
    choose_agent,
    reassign_is_current,
    widen_timer,
    widened,
)
from services.router.core.context import PERSONAL_DATA_TAG, join_cases, personal_data_reason
from services.router.core.effects import (
    Effect,
    EmitCaseEvent,
    EmitCrisisEvent,
    RecordMention,
    SaveCrisis,
    SendReply,
    StartTimer,
    Timer,
    TimerKind,
)
from services.router.core.escalation import climb, escalate, ladder_steps, requeue
from services.router.core.playbook import Conversation, Playbook, SlaTarget
from services.router.core.rules import Facts, Outcome, country_of, evaluate, segment_of
from services.router.core.sla import (
    cancel,
    clock_timer,
    clock_timers,
    replace_clock,
    same_instant,
    start_clock,
    stop_clock,
    timer_is_current,
)
from services.router.core.templates import auto_acknowledgement
from shared.events import (
    ActionKind,
    AgentAction,
    Author,
    Case,
    CaseEvent,
    CaseStatus,
    ClockKind,
    ClockState,
    Crisis,
    CrisisEvent,
    CustomerProfile,
    EventType,
    HandoffPackage,
    Mention,
    MentionClassified,
    MentionKind,
    Routing,
    SlaAlert,
    SlaClock,
    stable_id,
)


@dataclass(frozen=True)
class MentionInput:
    item: MentionClassified
    tenant: str
    # The open crisis of the mention's topic, if any.
    crisis: Crisis | None = None
    # A bulk replay of old mentions may opt out of alerts for deadlines already past (and of
    # automatic acknowledgements).
    alert_past_deadlines: bool = True
    # The author's profile: the VIP flag and the relationship an agent set count as the
    # playbook's lists (an inferred relationship does not route).
    customer: CustomerProfile | None = None
    # When `case` is another conversation's case this one joined (merge, link): the latest
    # generation of this conversation's own cases, if it had any.
    own_generation: int | None = None


@dataclass(frozen=True)
class TimerInput:
    timer: Timer
    crisis: Crisis | None = None  # for crisis timers and crisis ladder steps


@dataclass(frozen=True)
class ActionInput:
    action: AgentAction
    # A handoff's context, gathered by the caller (the whole conversation and the notes).
    package: HandoffPackage | None = None
    # A merge's case to absorb; a link's private thread's own case, if it has one.
    other: Case | None = None


Input = MentionInput | TimerInput | ActionInput


@dataclass
class Decision:
    case: Case | None
    effects: list[Effect] = field(default_factory=list)


def decide(
    case: Case | None,
    given: Input,
    playbook: Playbook,
    now: datetime,
    staff: Staff | None = None,
) -> Decision:
    """`staff` (the agents and their loads, read by the caller) lets the decision assign: an
    open case left without an assignee is offered to an agent when the playbook's assignment
    is automatic, and the assignment timers act on it. Without it, nobody is assigned."""
    if isinstance(given, TimerInput) and given.timer.kind in ASSIGNMENT_TIMERS:
        decision = _assignment_timer(case, given.timer, playbook, staff, now)
    else:
        decision = _decide(case, given, playbook, now)
    return _auto_assign(decision, playbook, staff, now)


def _decide(case: Case | None, given: Input, playbook: Playbook, now: datetime) -> Decision:
    if isinstance(given, TimerInput):
        return _timer_fired(case, given, playbook, now)
    if isinstance(given, ActionInput):
        if case is None:
            raise ActionRefused("no such case", status=404)
        if given.action.kind in (ActionKind.MERGE, ActionKind.LINK):
            return Decision(*join_cases(case, given.action, given.other))
        return Decision(*act(case, given.action, playbook, given.package))
    item = given.item
    if item.classification is None:
        return _brand_reply(case, given, playbook)
    return _customer_mention(case, given, playbook, now)


# -- assignment ----------------------------------------------------------------------------

ASSIGNMENT_TIMERS = (TimerKind.REASSIGN, TimerKind.WIDEN)


def _auto_assign(
    decision: Decision, playbook: Playbook, staff: Staff | None, now: datetime
) -> Decision:
    policy = playbook.assignment
    case = decision.case
    if (
        staff is None
        or not policy.automatic
        or case is None
        or case.status is not CaseStatus.OPEN
        or case.assignee is not None
    ):
        return decision
    choice = choose_agent(case, staff, policy, now)
    if choice is None:
        later = [] if widened(case, policy, now) else widen_timer(case, policy)
        return Decision(case, decision.effects + later)
    case, effects = _assign(
        case, choice.agent_id, f"automatic: {choice.reason(policy)}", playbook, now
    )
    return Decision(case, decision.effects + effects)


def _assignment_timer(
    case: Case | None, timer: Timer, playbook: Playbook, staff: Staff | None, now: datetime
) -> Decision:
    """A widening timer leaves the case to automatic assignment (it may widen now); a
    reassignment timer whose assignee has still not answered gives the case to another agent
    who may take it (with none, the case stays where it is and the SLA warning follows)."""
    if (
        timer.kind is not TimerKind.REASSIGN
        or playbook.assignment.reassign_before_warning_minutes is None  # switched off since
        or case is None
        or staff is None
        or not reassign_is_current(case, timer)
    ):
        return Decision(case)
    assert case.assignee is not None
    policy = playbook.assignment
    choice = choose_agent(case, staff, policy, now, exclude=frozenset({case.assignee}))
    if choice is None:
        return Decision(case)
    why = f"reassigned: {case.assignee} had not answered before the SLA warning"
    return Decision(
        *_assign(case, choice.agent_id, f"{why} ({choice.reason(policy)})", playbook, now)
    )


def _assign(
    case: Case, agent_id: str, why: str, playbook: Playbook, now: datetime
) -> tuple[Case, list[Effect]]:
    """Through the agents' own assign action, so the same event and timers follow."""
    action = AgentAction(
        action_id=stable_id("auto-assign", str(case.case_id), agent_id, now.isoformat()),
        kind=ActionKind.ASSIGN,
        actor=ROUTER_ACTOR,
        at=now,
        assignee=agent_id,
        text=why,
    )
    return act(case, action, playbook)


# -- customer mentions ----------------------------------------------------------------------


def _conversation(case: Case | None, playbook: Playbook, at: datetime) -> Conversation:
    if case is None:
        return "new"
    if case.status is CaseStatus.RESOLVED:
        window = timedelta(hours=playbook.lifecycle.reopen_within_hours)
        resolved = case.resolved_at or at
        return "reopened" if at <= resolved + window else "new"
    return "follow_up"


def _crisis_step(given: MentionInput, playbook: Playbook) -> tuple[Crisis | None, bool]:
    """The crisis this mention belongs to (already open, or opened by it) and whether it opens."""
    classification = given.item.classification
    assert classification is not None
    policy = playbook.crisis
    topic = classification.topic_key
    if topic is None or classification.crisis_risk < policy.min_crisis_risk:
        return given.crisis, False
    if given.crisis is not None:
        return given.crisis, False
    if classification.similar_recent + 1 < policy.open_at_similar:
        return None, False
    at = given.item.mention.created_at
    crisis = Crisis(
        crisis_id=stable_id("crisis", given.tenant, topic, str(given.item.mention.mention_id)),
        tenant=given.tenant,
        topic_key=topic,
        opened_at=at,
        last_signal_at=at,
    )
    return crisis, True


def _customer_mention(
    case: Case | None, given: MentionInput, playbook: Playbook, now: datetime
) -> Decision:
    item = given.item
    mention, classification = item.mention, item.classification
    assert classification is not None
    at = mention.created_at
    conversation = _conversation(case, playbook, at)
    crisis, opens = _crisis_step(given, playbook)
    # Only a mention that is itself high-risk joins (or opens) the crisis of its topic.
    joins = crisis is not None and (
        opens
        or (
            classification.crisis_risk >= playbook.crisis.min_crisis_risk
            and classification.topic_key == crisis.topic_key
        )
    )
    segment, vip = segment_of(playbook, mention)
    customer = given.customer
    if customer is not None:  # what an agent said counts; the router's own guesses do not route
        if customer.relationship_source == "agent":
            segment = segment or customer.relationship
        vip = vip or customer.vip
    facts = Facts(
        mention=mention,
        classification=classification,
        country=country_of(playbook, mention, classification.language),
        segment=segment,
        vip=vip,
        conversation=conversation,
        crisis_active=joins,
        at=at,
    )
    outcome = evaluate(playbook, facts)
    if personal_data_reason(mention, classification) and PERSONAL_DATA_TAG not in outcome.tags:
        outcome.tags.append(PERSONAL_DATA_TAG)
    if joins and crisis is not None:
        outcome.queue = playbook.crisis.queue or outcome.queue
        outcome.priority = min(outcome.priority, playbook.crisis.priority, key=lambda p: p.rank)
    calendar = playbook.calendar(outcome.queue)
    open_now = calendar.is_open(at)
    next_open = None if open_now else calendar.next_open(at)
    routing = Routing(
        playbook=playbook.label,
        queue=outcome.queue,
        priority=outcome.priority,
        trace=outcome.trace,
        out_of_hours=not open_now,
        next_open_at=next_open,
        acknowledgement=_acknowledgement(playbook, classification.language, next_open, outcome),
        record_only=outcome.record_only,
    )
    if outcome.record_only:
        live = case if conversation != "new" else None
        return Decision(case, [RecordMention(item, live.case_id if live else None, routing)])

    effects: list[Effect] = []
    if conversation == "new":
        updated, opened = _open_case(given, playbook, outcome, facts, _generation(case, given), now)
        event = EventType.CASE_CREATED
        effects += opened
        if given.alert_past_deadlines:
            effects += _auto_acknowledgement(updated, given, playbook, now)
    else:
        assert case is not None
        updated, changed = _follow_up(case, given, playbook, outcome, conversation, now)
        event = EventType.CASE_REOPENED if conversation == "reopened" else EventType.CASE_UPDATED
        effects += changed
    crisis_effects: list[Effect] = []
    if joins and crisis is not None:
        updated, crisis_effects = _join_crisis(updated, crisis, opens, given, playbook)
    effects = [
        RecordMention(item, updated.case_id, routing),
        EmitCaseEvent(
            event,
            CaseEvent(
                case=updated, mention=mention, classification=classification, routing=routing
            ),
            cause=str(mention.mention_id),
        ),
        *effects,
        *crisis_effects,
    ]
    if outcome.escalate is not None:
        rule = next(t.rule for t in outcome.trace if f"escalate={outcome.escalate}" in t.applied)
        updated, more = escalate(
            playbook,
            updated,
            to=outcome.escalate,
            trigger=f"rule:{rule}",
            at=at,
            cause=str(mention.mention_id),
        )
        effects += more
    if not given.alert_past_deadlines:
        effects = [e for e in effects if not _past_alert(e, now)]
    return Decision(updated, effects)


def _generation(case: Case | None, given: MentionInput) -> int:
    """Generations count per conversation: a conversation joined to another's case (merge,
    link) that comes back after that case is over opens its own next generation."""
    if case is None:
        return 0
    if case.conversation_key == given.item.mention.conversation_key:
        return case.generation + 1
    return 0 if given.own_generation is None else given.own_generation + 1


def _auto_acknowledgement(
    case: Case, given: MentionInput, playbook: Playbook, now: datetime
) -> list[Effect]:
    """The playbook's `auto` acknowledgement of a new case: recorded in the conversation and
    sent after the commit. It stops no clock: only a person's answer does."""
    classification = given.item.classification
    assert classification is not None
    text = auto_acknowledgement(playbook, case, classification.intents, now)
    if text is None:
        return []
    mention = given.item.mention
    reply = Mention(
        mention_id=stable_id("auto-acknowledgement", str(case.case_id)),
        channel=mention.channel,
        kind=MentionKind.REPLY,
        platform_id=f"auto-acknowledgement:{case.case_id}",
        conversation_id=mention.conversation_id,
        text=text,
        author=Author(handle=playbook.brand),
        created_at=max(now, mention.created_at, key=lambda t: t.astimezone(UTC)),
        in_reply_to=mention.platform_id,
    )
    return [
        RecordMention(
            MentionClassified(mention=reply, classification=None),
            case.case_id,
            None,
            event_id=stable_id("auto-acknowledgement-event", str(case.case_id)),
        ),
        SendReply(case, reply),
    ]


def _past_alert(effect: Effect, now: datetime) -> bool:
    """An SLA or escalation timer already due: a bulk replay opts out of those (the crisis quiet
    timer and inactivity stay, or a replayed crisis would never close)."""
    return (
        isinstance(effect, StartTimer)
        and effect.timer.kind in (TimerKind.SLA_WARNING, TimerKind.SLA_BREACH, TimerKind.ESCALATION)
        and effect.timer.due_at <= now
    )


def _acknowledgement(
    playbook: Playbook, language: str, next_open: datetime | None, outcome: Outcome
) -> str | None:
    """Out of hours, the out-of-hours template with the next opening; in hours, the in-hours
    one when a rule asks to acknowledge. In the case's language, else English."""
    if next_open is None and not outcome.acknowledge:
        return None
    templates = (
        playbook.acknowledgements if next_open is None else playbook.out_of_hours.acknowledgement
    )
    template = templates.get(language.split("-")[0]) or templates.get("en")
    if template is None:
        return None
    when = next_open.strftime("%d/%m %H:%M") if next_open else ""
    return template.replace("{next_open}", when)


def _open_case(
    given: MentionInput,
    playbook: Playbook,
    outcome: Outcome,
    facts: Facts,
    generation: int,
    now: datetime,
) -> tuple[Case, list[Effect]]:
    mention = given.item.mention
    classification = given.item.classification
    assert classification is not None
    key = mention.conversation_key
    parts = (
        ("case", given.tenant, key)
        if generation == 0
        else ("case", given.tenant, key, str(generation))
    )
    target = playbook.sla_for(outcome.priority, mention.channel, mention.kind)
    clocks = [
        clock
        for kind in (ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION)
        if (clock := start_clock(playbook, outcome.queue, target, kind, mention.created_at))
    ]
    first = clocks[0]
    case = Case(
        case_id=stable_id(*parts),
        tenant=given.tenant,
        conversation_key=key,
        generation=generation,
        channel=mention.channel,
        kind=mention.kind,
        priority=outcome.priority,
        status=CaseStatus.OPEN,
        queue=outcome.queue,
        language=classification.language,
        country=facts.country,
        author_handle=mention.author.handle,
        opened_at=mention.created_at,
        first_response_due_at=first.due_at,
        mention_count=1,
        tags=outcome.tags,
        clocks=clocks,
        last_customer_at=mention.created_at,
    )
    effects: list[Effect] = []
    for clock in clocks:
        effects += clock_timers(case, clock)
    return case, effects


def _follow_up(
    case: Case,
    given: MentionInput,
    playbook: Playbook,
    outcome: Outcome,
    conversation: Conversation,
    now: datetime,
) -> tuple[Case, list[Effect]]:
    """Another customer message: priority only rises (and the deadline comes closer, counted
    from now); after the brand's answer or a resolution, a next-response clock starts."""
    at = given.item.mention.created_at
    priority = min(case.priority, outcome.priority, key=lambda p: p.rank)
    raised = priority is not case.priority
    updated = case.model_copy(
        update={
            "priority": priority,
            "queue": outcome.queue if raised else case.queue,
            "mention_count": case.mention_count + 1,
            "tags": case.tags + [t for t in outcome.tags if t not in case.tags],
            "last_customer_at": max(at, case.last_customer_at or at),
        }
    )
    effects: list[Effect] = []
    if raised:
        updated, effects = requeue(playbook, updated, at)
    waiting = case.status in (CaseStatus.RESPONDED, CaseStatus.RESOLVED)
    if conversation == "reopened":
        updated = updated.model_copy(
            update={"resolved_at": None, "reopened_count": case.reopened_count + 1}
        )
    if waiting:
        target = playbook.sla_for(updated.priority, updated.channel, updated.kind)
        clock = start_clock(playbook, updated.queue, target, ClockKind.NEXT_RESPONSE, at)
        if clock is not None:
            updated = updated.model_copy(update={"clocks": replace_clock(updated, clock)})
            effects += clock_timers(updated, clock)
        updated = updated.model_copy(update={"status": CaseStatus.OPEN})
        updated, owed = _resolution_owed_again(updated, case.status, playbook, target, given)
        effects += owed
    return updated, effects


def _resolution_owed_again(
    case: Case, was: CaseStatus, playbook: Playbook, target: SlaTarget, given: MentionInput
) -> tuple[Case, list[Effect]]:
    """The brand owes a resolution again: a reopened case gets a new resolution clock; an
    answered one gets its clock's timers back (skipped while it waited on the customer, and
    due at once if their time has passed)."""
    at = given.item.mention.created_at
    if was is CaseStatus.RESOLVED:
        clock = start_clock(playbook, case.queue, target, ClockKind.RESOLUTION, at)
        if clock is None:
            return case, []
        case = case.model_copy(update={"clocks": replace_clock(case, clock)})
        return case, clock_timers(case, clock)
    resolution = case.clock(ClockKind.RESOLUTION)
    if resolution is None or not resolution.running:
        return case, []
    return case, clock_timers(case, resolution, round=str(given.item.mention.mention_id))


def _join_crisis(
    case: Case, crisis: Crisis, opens: bool, given: MentionInput, playbook: Playbook
) -> tuple[Case, list[Effect]]:
    at = given.item.mention.created_at
    classification = given.item.classification
    assert classification is not None
    new_member = case.crisis_id != crisis.crisis_id
    crisis = crisis.model_copy(
        update={
            "last_signal_at": max(crisis.last_signal_at, at),
            "case_count": crisis.case_count + (1 if new_member else 0),
            "peak_velocity": max(crisis.peak_velocity, classification.similar_recent + 1),
        }
    )
    case = case.model_copy(update={"crisis_id": crisis.crisis_id})
    quiet = crisis.last_signal_at
    effects: list[Effect] = [
        SaveCrisis(crisis),
        StartTimer(
            Timer.make(
                TimerKind.CRISIS_QUIET,
                owner=crisis.crisis_id,
                anchor=quiet,
                due_at=quiet + timedelta(minutes=playbook.crisis.close_after_quiet_minutes),
                tenant=crisis.tenant,
                subject=crisis.topic_key,
                crisis_id=crisis.crisis_id,
            )
        ),
    ]
    if opens:
        effects.append(
            EmitCrisisEvent(
                EventType.CRISIS_OPENED, CrisisEvent(crisis=crisis), cause=str(crisis.crisis_id)
            )
        )
        # The mention that opened the incident carries it up the crisis ladder.
        case, more = climb(
            playbook,
            case,
            ladder=playbook.crisis.ladder,
            trigger="crisis",
            at=at,
            clock=None,
            anchor=crisis.opened_at,
        )
        effects += more
    return case, effects


# -- the brand's answers ------------------------------------------------------------------


def _brand_reply(case: Case | None, given: MentionInput, playbook: Playbook) -> Decision:
    """The brand answered: the response clock that was running stops; the case waits for the
    customer, and resolves itself after the playbook's inactivity period.

    A deadline the answer came after is still announced (sla.warning, sla.breached) when no
    timer had announced it yet: the answer must not hide the miss. A reply older than the
    customer's latest message (feeds arrive out of order) leaves that message waiting."""
    item = given.item
    if case is None or case.status is CaseStatus.RESOLVED:
        return Decision(case, [RecordMention(item, case.case_id if case else None, None)])
    at = max(item.mention.created_at, case.opened_at, key=lambda t: t.astimezone(UTC))
    stopped = [c for c in case.clocks if c.running and c.kind is not ClockKind.RESOLUTION]
    clocks = [stop_clock(c, at) if c in stopped else c for c in case.clocks]
    updated = case.model_copy(
        update={
            "clocks": clocks,
            "status": CaseStatus.RESPONDED,
            "first_response_at": case.first_response_at or at,
            "last_brand_at": max(at, case.last_brand_at or at, key=lambda t: t.astimezone(UTC)),
        }
    )
    effects: list[Effect] = [RecordMention(item, case.case_id, None)]
    effects += _missed_alerts(case, stopped, at)
    if stopped:
        effects.append(
            EmitCaseEvent(
                EventType.CASE_RESPONDED,
                CaseEvent(case=updated, mention=item.mention),
                cause=str(item.mention.mention_id),
            )
        )
    effects += [cancel(case.case_id, c.kind) for c in stopped]
    waiting = case.last_customer_at
    if waiting is not None and waiting.astimezone(UTC) > at.astimezone(UTC):
        target = playbook.sla_for(updated.priority, updated.channel, updated.kind)
        clock = start_clock(playbook, updated.queue, target, ClockKind.NEXT_RESPONSE, waiting)
        if clock is not None:
            updated = updated.model_copy(
                update={"clocks": replace_clock(updated, clock), "status": CaseStatus.OPEN}
            )
            effects += clock_timers(updated, clock)
            return Decision(updated, effects)
    anchor = updated.last_brand_at
    assert anchor is not None
    effects.append(
        StartTimer(
            Timer.make(
                TimerKind.INACTIVITY,
                owner=case.case_id,
                anchor=anchor,
                due_at=anchor + timedelta(hours=playbook.lifecycle.resolve_after_inactive_hours),
                tenant=case.tenant,
                subject=case.conversation_key,
                case_id=case.case_id,
                round=str(item.mention.mention_id),
            )
        )
    )
    return Decision(updated, effects)


def _missed_alerts(case: Case, stopped: list[SlaClock], at: datetime) -> list[Effect]:
    """Warnings and breaches an answer at `at` came after and no timer had announced yet (the
    timer was not taken yet, or a batch held the case). Same id as the timer's event."""
    alerts: list[Effect] = []
    for clock in stopped:
        for kind, event, passed, announced in (
            (
                TimerKind.SLA_WARNING,
                EventType.SLA_WARNING,
                clock.warning_at,
                clock.state is not ClockState.RUNNING,
            ),
            (
                TimerKind.SLA_BREACH,
                EventType.SLA_BREACHED,
                clock.due_at,
                clock.state is ClockState.BREACHED,
            ),
        ):
            if announced or passed.astimezone(UTC) > at.astimezone(UTC):
                continue
            state = ClockState.WARNING if kind is TimerKind.SLA_WARNING else ClockState.BREACHED
            alerts.append(
                EmitCaseEvent(
                    event,
                    CaseEvent(
                        case=case, sla=SlaAlert(clock=clock.model_copy(update={"state": state}))
                    ),
                    cause=str(clock_timer(case, clock, kind).timer_id),
                )
            )
    return alerts


# -- timers ---------------------------------------------------------------------------------


def _timer_fired(
    case: Case | None, given: TimerInput, playbook: Playbook, now: datetime
) -> Decision:
    timer = given.timer
    if timer.kind is TimerKind.CRISIS_QUIET:
        return _crisis_quiet(case, given, playbook)
    if case is None or case.status in (CaseStatus.RESOLVED, CaseStatus.MERGED):
        return Decision(case)
    cause = str(timer.timer_id)
    if timer.kind in (TimerKind.SLA_WARNING, TimerKind.SLA_BREACH):
        clock = timer_is_current(case, timer)
        if clock is None:
            return Decision(case)
        breach = timer.kind is TimerKind.SLA_BREACH
        clock = clock.model_copy(
            update={"state": ClockState.BREACHED if breach else ClockState.WARNING}
        )
        updated = case.model_copy(update={"clocks": replace_clock(case, clock)})
        event = EventType.SLA_BREACHED if breach else EventType.SLA_WARNING
        effects: list[Effect] = [
            EmitCaseEvent(event, CaseEvent(case=updated, sla=SlaAlert(clock=clock)), cause=cause)
        ]
        updated, more = climb(
            playbook,
            updated,
            ladder=playbook.ladder(updated.queue),
            trigger="breach" if breach else "warning",
            at=timer.due_at,
            clock=clock,
            anchor=timer.anchor,
        )
        return Decision(updated, effects + more)
    if timer.kind is TimerKind.ESCALATION:
        return _escalation_step(case, given, playbook)
    return _inactive(case, timer)


def _escalation_step(case: Case, given: TimerInput, playbook: Playbook) -> Decision:
    """A ladder step that waited: taken only if what triggered it still stands (the clock still
    runs unanswered, or the crisis is still open)."""
    timer = given.timer
    if timer.trigger == "crisis":
        stands = given.crisis is not None and given.crisis.closed_at is None
    else:
        clock = case.clock(timer.clock) if timer.clock else None
        stands = clock is not None and clock.running
    # The step armed, from the ladder it was armed on (a step since may have moved the case to
    # a queue with another ladder).
    ladder = timer.ladder if timer.ladder in playbook.ladders else None
    steps = dict(ladder_steps(playbook, ladder, timer.trigger or ""))
    step = steps.get(timer.step or 0)
    if not stands or step is None:
        return Decision(case)
    updated, effects = escalate(
        playbook,
        case,
        to=step.to,
        trigger=timer.trigger or "",
        at=timer.due_at,
        cause=str(timer.timer_id),
        queue=step.queue,
    )
    return Decision(updated, effects)


def _inactive(case: Case, timer: Timer) -> Decision:
    last = case.last_brand_at
    if case.status is not CaseStatus.RESPONDED or last is None:
        return Decision(case)
    if not same_instant(last, timer.anchor):
        return Decision(case)
    at = timer.due_at
    clocks = [stop_clock(c, at) if c.running else c for c in case.clocks]
    resolved = case.model_copy(
        update={"status": CaseStatus.RESOLVED, "resolved_at": at, "clocks": clocks}
    )
    return Decision(
        resolved,
        [
            EmitCaseEvent(
                EventType.CASE_RESOLVED, CaseEvent(case=resolved), cause=str(timer.timer_id)
            ),
            *[cancel(case.case_id, c.kind) for c in case.clocks if c.running],
        ],
    )


def _crisis_quiet(case: Case | None, given: TimerInput, playbook: Playbook) -> Decision:
    crisis = given.crisis
    if (
        crisis is None
        or crisis.closed_at is not None
        or not same_instant(crisis.last_signal_at, given.timer.anchor)
    ):
        return Decision(case)
    closed = crisis.model_copy(update={"closed_at": given.timer.due_at})
    return Decision(
        case,
        [
            SaveCrisis(closed),
            EmitCrisisEvent(
                EventType.CRISIS_CLOSED, CrisisEvent(crisis=closed), cause=str(closed.crisis_id)
            ),
        ],
    )
