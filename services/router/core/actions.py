"""Agent actions on a case (assign, note, priority, escalate, resolve, reopen) as decisions: the
same clocks, timers, events and webhooks follow from them as from mentions and timers. The
brand's reply is a mention of kind `reply` and goes through the mention path."""

from __future__ import annotations

from datetime import datetime

from services.router.core.effects import Effect, EmitCaseEvent
from services.router.core.escalation import escalate, requeue
from services.router.core.playbook import Playbook
from services.router.core.sla import cancel, clock_timers, replace_clock, start_clock, stop_clock
from shared.events import (
    ActionKind,
    AgentAction,
    Case,
    CaseEvent,
    CaseStatus,
    ClockKind,
    EventType,
)


class ActionRefused(ValueError):
    """Why an action cannot be taken, as the HTTP status the API answers with: no such case
    (404), not for the case as it is (409), incomplete or naming what the playbook lacks (422)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def act(case: Case, action: AgentAction, playbook: Playbook) -> tuple[Case, list[Effect]]:
    at = action.at
    if action.kind is ActionKind.REPLY:
        raise ActionRefused("a reply is a mention of kind reply", status=422)
    if case.status is CaseStatus.RESOLVED and action.kind not in (
        ActionKind.REOPEN,
        ActionKind.NOTE,
    ):
        raise ActionRefused(f"case {case.case_id} is resolved: reopen it first", status=409)
    event = EventType.CASE_UPDATED
    effects: list[Effect] = []
    match action.kind:
        case ActionKind.ASSIGN:
            case = case.model_copy(update={"assignee": action.assignee or action.actor})
        case ActionKind.NOTE:
            if not action.text:
                raise ActionRefused("a note needs text", status=422)
        case ActionKind.PRIORITY:
            if action.priority is None:
                raise ActionRefused("give the new priority", status=422)
            raised = action.priority.rank < case.priority.rank
            case = case.model_copy(update={"priority": action.priority})
            if raised:  # deadlines come closer, counted from now; a lower priority keeps them
                case, effects = requeue(playbook, case, at)
        case ActionKind.ESCALATE:
            if action.target not in playbook.escalation_targets:
                raise ActionRefused(
                    f"unknown escalation target {action.target!r}; the playbook has "
                    f"{playbook.escalation_targets}",
                    status=422,
                )
            return escalate(
                playbook,
                case,
                to=action.target,
                trigger="agent",
                at=at,
                cause=str(action.action_id),
            )
        case ActionKind.RESOLVE:
            return _resolve(case, at, action)
        case ActionKind.REOPEN:
            if case.status is not CaseStatus.RESOLVED:
                raise ActionRefused(f"case {case.case_id} is not resolved", status=409)
            return _reopen(case, at, action, playbook)
    return case, [
        EmitCaseEvent(event, CaseEvent(case=case, action=action), cause=str(action.action_id)),
        *effects,
    ]


def _resolve(case: Case, at: datetime, action: AgentAction) -> tuple[Case, list[Effect]]:
    running = [c for c in case.clocks if c.running]
    resolved = case.model_copy(
        update={
            "status": CaseStatus.RESOLVED,
            "resolved_at": at,
            "clocks": [stop_clock(c, at) if c.running else c for c in case.clocks],
        }
    )
    return resolved, [
        EmitCaseEvent(
            EventType.CASE_RESOLVED,
            CaseEvent(case=resolved, action=action),
            cause=str(action.action_id),
        ),
        *[cancel(case.case_id, c.kind) for c in running],
    ]


def _reopen(
    case: Case, at: datetime, action: AgentAction, playbook: Playbook
) -> tuple[Case, list[Effect]]:
    """Reopened by an agent: the brand owes an answer again, on a new next-response clock."""
    reopened = case.model_copy(
        update={
            "status": CaseStatus.OPEN,
            "resolved_at": None,
            "reopened_count": case.reopened_count + 1,
        }
    )
    target = playbook.sla_for(case.priority, case.channel, case.kind)
    clock = start_clock(playbook, case.queue, target, ClockKind.NEXT_RESPONSE, at)
    effects: list[Effect] = []
    if clock is not None:
        reopened = reopened.model_copy(update={"clocks": replace_clock(reopened, clock)})
        effects = clock_timers(reopened, clock)
    return reopened, [
        EmitCaseEvent(
            EventType.CASE_REOPENED,
            CaseEvent(case=reopened, action=action),
            cause=str(action.action_id),
        ),
        *effects,
    ]
