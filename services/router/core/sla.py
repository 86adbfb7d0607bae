"""SLA clocks: deadlines in the owning queue's business (or wall-clock) time, and the timers
that make `sla.warning` and `sla.breached` fire."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from services.router.core.effects import CancelTimers, Effect, StartTimer, Timer, TimerKind
from services.router.core.playbook import Playbook, SlaTarget
from shared.events import Case, ClockKind, ClockState, SlaClock


def start_clock(
    playbook: Playbook, queue: str, target: SlaTarget, kind: ClockKind, start: datetime
) -> SlaClock | None:
    """None when the target sets no time for this clock (e.g. no resolution promise)."""
    minutes = target.minutes(kind)
    if minutes is None:
        return None
    calendar = playbook.calendar(queue)
    if target.business_time:
        due = calendar.add_business_minutes(start, minutes)
        warning = calendar.add_business_minutes(start, minutes * target.warning_at)
    else:
        due = (start + timedelta(minutes=minutes)).astimezone(calendar.zone)
        warning = (start + timedelta(minutes=minutes * target.warning_at)).astimezone(calendar.zone)
    return SlaClock(
        kind=kind,
        started_at=start,
        due_at=due,
        warning_at=warning,
        business_time=target.business_time,
    )


def retarget(
    playbook: Playbook, queue: str, target: SlaTarget, clock: SlaClock, at: datetime
) -> SlaClock:
    """A running clock after an escalation at `at`: the new promise counts from `at`, never
    from the past, and never later than the promise already made."""
    fresh = start_clock(playbook, queue, target, clock.kind, at)
    if fresh is None or fresh.due_at >= clock.due_at or clock.state is ClockState.BREACHED:
        return clock
    return clock.model_copy(update={"due_at": fresh.due_at, "warning_at": fresh.warning_at})


def stop_clock(clock: SlaClock, at: datetime) -> SlaClock:
    at = max(at, clock.started_at)
    state = ClockState.MET if at <= clock.due_at else ClockState.MISSED
    return clock.model_copy(update={"stopped_at": at, "state": state})


def clock_timers(case: Case, clock: SlaClock) -> list[Effect]:
    """Warning and breach timers of a running clock; a deadline already past fires at once."""
    timers: list[Effect] = []
    if clock.state is ClockState.RUNNING:
        timers.append(StartTimer(_timer(case, clock, TimerKind.SLA_WARNING, clock.warning_at)))
    if clock.state in (ClockState.RUNNING, ClockState.WARNING):
        timers.append(StartTimer(_timer(case, clock, TimerKind.SLA_BREACH, clock.due_at)))
    return timers


def _timer(case: Case, clock: SlaClock, kind: TimerKind, due: datetime) -> Timer:
    return Timer.make(
        kind,
        owner=case.case_id,
        anchor=due,
        due_at=due,
        tenant=case.tenant,
        subject=case.conversation_key,
        case_id=case.case_id,
        clock=clock.kind,
    )


def timer_is_current(case: Case, timer: Timer) -> SlaClock | None:
    """The clock a fired SLA timer belongs to, or None when the timer is stale."""
    clock = case.clock(timer.clock) if timer.clock is not None else None
    if clock is None or not clock.running:
        return None
    if timer.kind is TimerKind.SLA_WARNING:
        current = clock.state is ClockState.RUNNING and clock.warning_at == timer.anchor
    else:
        current = clock.state is not ClockState.BREACHED and clock.due_at == timer.anchor
    return clock if current else None


def replace_clock(case: Case, clock: SlaClock) -> list[SlaClock]:
    return [c for c in case.clocks if c.kind is not clock.kind] + [clock]


def cancel(case_id: uuid.UUID, clock: ClockKind) -> CancelTimers:
    return CancelTimers(case_id=case_id, clock=clock)
