"""Escalation: a ladder step (on an SLA warning or breach, or a crisis) or a rule sends the case
to a target (team lead, legal, marketing, crisis room), maybe to another queue. Clocks that move
to another queue are re-counted from the escalation time, never into the past."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.router.core.effects import Effect, EmitCaseEvent, StartTimer, Timer, TimerKind
from services.router.core.playbook import LadderStep, Playbook
from services.router.core.sla import clock_timers, retarget
from shared.events import Case, CaseEvent, ClockKind, Escalation, EventType, SlaClock


def escalate(
    playbook: Playbook,
    case: Case,
    *,
    to: str,
    trigger: str,
    at: datetime,
    cause: str,
    queue: str | None = None,
) -> tuple[Case, list[Effect]]:
    level = case.escalation_level + 1
    moved = queue is not None and queue != case.queue
    updated = case.model_copy(
        update={
            "escalation_level": level,
            "escalated_to": [*case.escalated_to, to],
            "queue": queue if moved else case.queue,
        }
    )
    effects: list[Effect] = []
    if moved:
        updated, effects = requeue(playbook, updated, at)
    escalation = Escalation(target=to, trigger=trigger, level=level)
    return updated, [
        EmitCaseEvent(
            EventType.CASE_ESCALATED,
            CaseEvent(case=updated, escalation=escalation),
            cause=f"{cause}|{level}",
        ),
        *effects,
    ]


def requeue(playbook: Playbook, case: Case, at: datetime) -> tuple[Case, list[Effect]]:
    """Running clocks counted again in the (new) queue's hours for the case's priority, from
    `at`; a deadline only ever comes closer. New timers for the clocks that changed."""
    target = playbook.sla_for(case.priority, case.channel, case.kind)
    clocks: list[SlaClock] = []
    effects: list[Effect] = []
    for clock in case.clocks:
        if clock.running:
            moved = retarget(playbook, case.queue, target, clock, at)
            if moved != clock:
                clock = moved
                effects += clock_timers(case, clock)
        clocks.append(clock)
    first = next((c for c in clocks if c.kind is ClockKind.FIRST_RESPONSE), None)
    updated = case.model_copy(
        update={
            "clocks": clocks,
            "first_response_due_at": first.due_at if first else case.first_response_due_at,
        }
    )
    return updated, effects


def ladder_steps(
    playbook: Playbook, ladder: str | None, trigger: str
) -> list[tuple[int, LadderStep]]:
    if ladder is None:
        return []
    return [(i, s) for i, s in enumerate(playbook.ladders[ladder]) if s.trigger == trigger]


def climb(
    playbook: Playbook,
    case: Case,
    *,
    ladder: str | None,
    trigger: str,
    at: datetime,
    clock: SlaClock | None,
    anchor: datetime,
) -> tuple[Case, list[Effect]]:
    """Take the ladder's steps for this trigger: at once, or on a timer `after_minutes` later."""
    effects: list[Effect] = []
    for index, step in ladder_steps(playbook, ladder, trigger):
        if step.after_minutes == 0:
            case, more = escalate(
                playbook,
                case,
                to=step.to,
                trigger=trigger,
                at=at,
                cause=f"{anchor.isoformat()}|{index}",
                queue=step.queue,
            )
            effects += more
        else:
            effects.append(
                StartTimer(
                    Timer.make(
                        TimerKind.ESCALATION,
                        owner=case.case_id,
                        anchor=anchor,
                        due_at=at + timedelta(minutes=step.after_minutes),
                        tenant=case.tenant,
                        subject=case.conversation_key,
                        case_id=case.case_id,
                        clock=clock.kind if clock else None,
                        ladder=ladder,
                        step=index,
                        trigger=trigger,
                    )
                )
            )
    return case, effects
