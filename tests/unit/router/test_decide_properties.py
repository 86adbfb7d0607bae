"""Properties of the decider over random conversations: whatever customers and the brand write,
and whenever timers fire, the case stays coherent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.core import (
    EmitCaseEvent,
    MentionInput,
    StartTimer,
    Timer,
    TimerInput,
    decide,
)
from shared.events import Case, CaseStatus, ClockKind, EventType, Priority
from tests.unit.router.builders import classified, reply, sample_playbook

PLAYBOOK = sample_playbook()
START = datetime(2026, 9, 20, 6, 0, tzinfo=UTC)  # may cross the October DST change

step = st.one_of(
    st.tuples(st.just("customer"), st.sampled_from(list(Priority)), st.integers(1, 600)),
    st.tuples(st.just("brand"), st.just(Priority.P4), st.integers(1, 600)),
    st.tuples(st.just("timers"), st.just(Priority.P4), st.integers(1, 3000)),
)


@settings(max_examples=120, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=25), language=st.sampled_from(["es", "en"]))
def test_a_case_stays_coherent_whatever_happens(
    steps: list[tuple[str, Priority, int]], language: str
) -> None:
    case: Case | None = None
    armed: dict[object, Timer] = {}
    at = START
    announced: set[tuple[str, str]] = set()
    for index, (who, priority, minutes) in enumerate(steps):
        at += timedelta(minutes=minutes)
        before = case
        if who == "timers":
            due = sorted((t for t in armed.values() if t.due_at <= at), key=lambda t: t.due_at)
            for timer in due:
                del armed[timer.timer_id]
                decision = decide(case, TimerInput(timer), PLAYBOOK, at)
                case = decision.case
                _collect(decision.effects, armed, announced)
            continue
        item = (
            classified(at, priority, platform_id=str(index), language=language)
            if who == "customer"
            else reply(at, platform_id=f"r{index}")
        )
        decision = decide(case, MentionInput(item, "acme"), PLAYBOOK, at)
        case = decision.case
        _collect(decision.effects, armed, announced)
        if case is None:
            continue
        assert case.first_response_due_at >= case.opened_at
        for clock in case.clocks:
            assert clock.due_at >= clock.started_at and clock.warning_at <= clock.due_at
        kinds = [c.kind for c in case.clocks]
        assert len(kinds) == len(set(kinds))  # one clock of each kind
        if case.status is CaseStatus.RESPONDED:
            assert case.last_brand_at is not None
            assert all(not c.running for c in case.clocks if c.kind is not ClockKind.RESOLUTION)
        if before is not None and before.case_id == case.case_id:
            # Priority only ever rises within a case.
            assert case.priority.rank <= before.priority.rank


def _collect(
    effects: Sequence[object], armed: dict[object, Timer], announced: set[tuple[str, str]]
) -> None:
    for effect in effects:
        if isinstance(effect, StartTimer):
            armed[effect.timer.timer_id] = effect.timer
        if isinstance(effect, EmitCaseEvent) and effect.event_type in (
            EventType.SLA_WARNING,
            EventType.SLA_BREACHED,
        ):
            key = (effect.event_type.value, effect.cause)
            assert key not in announced  # one alert per timer
            announced.add(key)
