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
from services.router.core.actions import suggested_next_step
from shared.events import (
    ActionKind,
    AgentAction,
    Case,
    CaseStatus,
    ClockKind,
    ClockState,
    EventType,
    HandoffPackage,
    HandoffTarget,
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


def package(case: Case, target: HandoffTarget, queue: str | None = None) -> HandoffPackage:
    return HandoffPackage(
        target=target,
        queue=queue,
        reason="needs the account",
        customer={"handle": "ana"},
        conversation=[],
        notes=[],
        clocks=case.clocks,
        suggested_next_step=suggested_next_step(target, case, queue),
    )


def hand_off(case: Case, target: HandoffTarget, queue: str | None = None) -> Decision:
    action = AgentAction(
        action_id=uuid.uuid4(), kind=ActionKind.HANDOFF, actor="ana", at=AT, target=target.value
    )
    return decide(case, ActionInput(action, package(case, target, queue)), PLAYBOOK, AT)


def test_a_handoff_out_of_the_social_channel_stops_the_response_clock_until_the_outcome() -> None:
    case = opened()
    handed = hand_off(case, HandoffTarget.PHONE)
    after = handed.case
    assert after is not None and after.status is CaseStatus.HANDED_OFF
    first = after.clock(ClockKind.FIRST_RESPONSE)
    assert first is not None and not first.running
    (event,) = [e for e in handed.effects if isinstance(e, EmitCaseEvent)]
    assert event.event_type is EventType.CASE_HANDOFF
    assert event.payload.handoff is not None and event.payload.handoff.package is not None
    assert "Call the customer" in event.payload.handoff.package.suggested_next_step
    with pytest.raises(ActionRefused):
        hand_off(after, HandoffTarget.EMAIL)  # already handed off
    resolved = act(after, ActionKind.HANDOFF_OUTCOME, outcome="resolved")
    assert resolved.case is not None and resolved.case.status is CaseStatus.RESOLVED
    (outcome,) = [e for e in resolved.effects if isinstance(e, EmitCaseEvent)]
    assert outcome.payload.handoff is not None and outcome.payload.handoff.outcome == "resolved"
    returned = act(after, ActionKind.HANDOFF_OUTCOME, outcome="returned")
    assert returned.case is not None and returned.case.status is CaseStatus.OPEN
    assert returned.case.clock(ClockKind.NEXT_RESPONSE) is not None


def test_a_private_message_stays_in_the_social_channel_and_a_queue_handoff_moves_the_case() -> None:
    case = opened()
    private = hand_off(case, HandoffTarget.PRIVATE_MESSAGE)
    assert private.case is not None and private.case.status is CaseStatus.OPEN
    assert "private-thread" in private.case.tags
    moved = hand_off(case, HandoffTarget.QUEUE, queue="community-managers")
    assert moved.case is not None and moved.case.queue == "community-managers"
    with pytest.raises(ActionRefused) as refused:
        hand_off(case, HandoffTarget.QUEUE, queue="nowhere")
    assert refused.value.status == 422
    with pytest.raises(ActionRefused) as refused:
        act(case, ActionKind.HANDOFF_OUTCOME, outcome="resolved")  # not handed off
    assert refused.value.status == 409
