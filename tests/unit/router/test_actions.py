"""Agent actions through the decider: what each does to the case, its clocks and its events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.router.core import (
    ActionInput,
    ActionRefused,
    CancelTimers,
    Decision,
    EmitCaseEvent,
    MentionInput,
    StartTimer,
    decide,
)
from shared.events import (
    ActionKind,
    AgentAction,
    Case,
    CaseStatus,
    ClockKind,
    ClockState,
    EventType,
    Priority,
)
from tests.unit.router.builders import classified, sample_playbook

PLAYBOOK = sample_playbook()
AT = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Madrid


def opened(priority: Priority = Priority.P3) -> Case:
    case = decide(None, MentionInput(classified(AT, priority), "t"), PLAYBOOK, AT).case
    assert case is not None
    return case


def act(case: Case | None, kind: ActionKind, minutes: int = 10, **fields: object) -> Decision:
    action = AgentAction(
        action_id=uuid.uuid4(),
        kind=kind,
        actor="ana",
        at=AT + timedelta(minutes=minutes),
        **fields,
    )
    return decide(case, ActionInput(action), PLAYBOOK, action.at)


def emitted(decision: Decision) -> list[EventType]:
    return [e.event_type for e in decision.effects if isinstance(e, EmitCaseEvent)]


def test_claim_assigns_the_actor_and_assign_names_another_agent() -> None:
    claimed = act(opened(), ActionKind.ASSIGN)
    assert claimed.case is not None and claimed.case.assignee == "ana"
    assert emitted(claimed) == [EventType.CASE_UPDATED]
    event = claimed.effects[0]
    assert isinstance(event, EmitCaseEvent) and event.payload.action is not None
    given = act(opened(), ActionKind.ASSIGN, assignee="luis")
    assert given.case is not None and given.case.assignee == "luis"


def test_a_note_changes_nothing_but_the_history() -> None:
    case = opened()
    noted = act(case, ActionKind.NOTE, text="cliente VIP, llamar mañana")
    assert noted.case == case and emitted(noted) == [EventType.CASE_UPDATED]
    with pytest.raises(ActionRefused) as refused:
        act(case, ActionKind.NOTE)
    assert refused.value.status == 422


def test_a_raised_priority_brings_the_deadline_in_from_now_a_lower_one_keeps_it() -> None:
    case = opened(Priority.P3)  # 240 business minutes
    raised = act(case, ActionKind.PRIORITY, minutes=30, priority=Priority.P1)
    assert raised.case is not None and raised.case.priority is Priority.P1
    assert raised.case.first_response_due_at == AT + timedelta(minutes=45)  # 30 + 15, wall time
    assert any(isinstance(e, StartTimer) for e in raised.effects)
    lowered = act(case, ActionKind.PRIORITY, priority=Priority.P4)
    assert lowered.case is not None and lowered.case.priority is Priority.P4
    assert lowered.case.first_response_due_at == case.first_response_due_at


def test_escalation_needs_a_target_the_playbook_has() -> None:
    escalated = act(opened(), ActionKind.ESCALATE, target="legal")
    assert escalated.case is not None and escalated.case.escalated_to == ["legal"]
    assert emitted(escalated) == [EventType.CASE_ESCALATED]
    with pytest.raises(ActionRefused) as refused:
        act(opened(), ActionKind.ESCALATE, target="the-ceo")
    assert refused.value.status == 422 and "legal" in str(refused.value)


def test_resolve_stops_every_clock_and_only_reopen_or_a_note_follow() -> None:
    case = opened()
    resolved = act(case, ActionKind.RESOLVE)
    after = resolved.case
    assert after is not None and after.status is CaseStatus.RESOLVED
    assert all(not c.running for c in after.clocks)
    assert {c.state for c in after.clocks} == {ClockState.MET}
    assert emitted(resolved) == [EventType.CASE_RESOLVED]
    assert {e.clock for e in resolved.effects if isinstance(e, CancelTimers)} == {
        ClockKind.FIRST_RESPONSE,
        ClockKind.RESOLUTION,
    }
    for kind in (ActionKind.ASSIGN, ActionKind.RESOLVE):
        with pytest.raises(ActionRefused) as refused:
            act(after, kind)
        assert refused.value.status == 409
    reopened = act(after, ActionKind.REOPEN, minutes=60)
    assert reopened.case is not None and reopened.case.status is CaseStatus.OPEN
    clock = reopened.case.clock(ClockKind.NEXT_RESPONSE)
    assert clock is not None and clock.started_at == AT + timedelta(minutes=60)
    assert emitted(reopened) == [EventType.CASE_REOPENED]
    with pytest.raises(ActionRefused) as refused:
        act(reopened.case, ActionKind.REOPEN)
    assert refused.value.status == 409


def test_an_action_on_no_case_is_a_404() -> None:
    with pytest.raises(ActionRefused) as refused:
        act(None, ActionKind.ASSIGN)
    assert refused.value.status == 404
