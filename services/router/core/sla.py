"""SLA clocks: deadlines in the owning queue's business (or wall-clock) time, and the timers
that make `sla.warning` and `sla.breached` fire."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.router.core.effects import CancelTimers, Effect, StartTimer, Timer, TimerKind
from services.router.core.playbook import Playbook, SlaTarget
from shared.events import Case, CaseStatus, ClockKind, ClockState, SlaClock


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


def same_instant(a: datetime, b: datetime) -> bool:
    """Compared in UTC: two times in one ZoneInfo zone compare as wall times (ignoring the DST
    fold), and a JSON round trip turns the zone into a fixed offset."""
    return a.astimezone(UTC) == b.astimezone(UTC)


def retarget(
    playbook: Playbook, queue: str, target: SlaTarget, clock: SlaClock, at: datetime
) -> SlaClock:
    """A running clock after an escalation at `at`: the new promise counts from `at`, never
    from the past, and never later than the promise already made."""
    fresh = start_clock(playbook, queue, target, clock.kind, at)
    earlier = fresh is not None and fresh.due_at.astimezone(UTC) < clock.due_at.astimezone(UTC)
    if fresh is None or not earlier or clock.state is ClockState.BREACHED:
        return clock
    return clock.model_copy(update={"due_at": fresh.due_at, "warning_at": fresh.warning_at})


def stop_clock(clock: SlaClock, at: datetime) -> SlaClock:
    at = max(at, clock.started_at, key=lambda t: t.astimezone(UTC))
    state = (
        ClockState.MET if at.astimezone(UTC) <= clock.due_at.astimezone(UTC) else ClockState.MISSED
    )
    return clock.model_copy(update={"stopped_at": at, "state": state})


def clock_timers(case: Case, clock: SlaClock, *, round: str | None = None) -> list[Effect]:
    """Warning and breach timers of a running clock; a deadline already past fires at once.
    `round` re-arms timers of the same deadline (after they were skipped as not current)."""
    timers: list[Effect] = []
    if clock.state is ClockState.RUNNING:
        timers.append(StartTimer(clock_timer(case, clock, TimerKind.SLA_WARNING, round)))
    if clock.state in (ClockState.RUNNING, ClockState.WARNING):
        timers.append(StartTimer(clock_timer(case, clock, TimerKind.SLA_BREACH, round)))
    return timers


def clock_timer(case: Case, clock: SlaClock, kind: TimerKind, round: str | None = None) -> Timer:
    due = clock.warning_at if kind is TimerKind.SLA_WARNING else clock.due_at
    return Timer.make(
        kind,
        owner=case.case_id,
        anchor=due,
        due_at=due,
        tenant=case.tenant,
        subject=case.conversation_key,
        case_id=case.case_id,
        clock=clock.kind,
        round=round,
    )


def timer_is_current(case: Case, timer: Timer) -> SlaClock | None:
    """The clock a fired SLA timer belongs to, or None when the timer is stale."""
    clock = case.clock(timer.clock) if timer.clock is not None else None
    if clock is None or not clock.running:
        return None
    if clock.kind is ClockKind.RESOLUTION and case.status is CaseStatus.RESPONDED:
        # The case waits on the customer: the brand owes nothing now. The timers are armed
        # again when the customer writes (and fire at once if their time has passed).
        return None
    if timer.kind is TimerKind.SLA_WARNING:
        current = clock.state is ClockState.RUNNING and same_instant(clock.warning_at, timer.anchor)
    else:
        current = clock.state is not ClockState.BREACHED and same_instant(
            clock.due_at, timer.anchor
        )
    return clock if current else None


def replace_clock(case: Case, clock: SlaClock) -> list[SlaClock]:
    return [c for c in case.clocks if c.kind is not clock.kind] + [clock]


def cancel(case_id: uuid.UUID, clock: ClockKind) -> CancelTimers:
    return CancelTimers(case_id=case_id, clock=clock)


SLA_STATES = ("none", "met", "missed", "running", "warning", "breached")


def sla_state(case: Case) -> str:
    """The case's SLA at a glance, for filters and queues: the worst running clock (breached,
    warning, running), else whether the stopped ones were met; "none" without clocks."""
    running = [c.state for c in case.clocks if c.running]
    for state in (ClockState.BREACHED, ClockState.WARNING, ClockState.RUNNING):
        if state in running:
            return state.value
    if not case.clocks:
        return "none"
    return "missed" if any(c.state is ClockState.MISSED for c in case.clocks) else "met"
