"""Agent actions on a case (assign, note, priority, escalate, resolve, reopen) as decisions: the
same clocks, timers, events and webhooks follow from them as from mentions and timers. The
brand's reply is a mention of kind `reply` and goes through the mention path."""

from __future__ import annotations

from datetime import datetime

from services.router.core.assignment import on_assigned
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
    Handoff,
    HandoffPackage,
    HandoffTarget,
)


class ActionRefused(ValueError):
    """Why an action cannot be taken, as the HTTP status the API answers with: no such case
    (404), not for the case as it is (409), incomplete or naming what the playbook lacks (422)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


SOCIAL_TARGETS = frozenset({HandoffTarget.PRIVATE_MESSAGE, HandoffTarget.QUEUE})
NEXT_STEPS = {
    HandoffTarget.PRIVATE_MESSAGE: "Continue in a private message on {channel}: ask only for "
    "the account details still missing; the customer has already explained the problem.",
    HandoffTarget.PHONE: "Call the customer; read the conversation first and do not ask them "
    "to explain again.",
    HandoffTarget.EMAIL: "Write to the customer by e-mail, quoting the case; confirm on "
    "{channel} that the e-mail is on its way.",
    HandoffTarget.STORE: "Book the customer into a store with the case attached.",
    HandoffTarget.LEGAL: "Legal review: the conversation and its classification are attached.",
    HandoffTarget.MARKETING: "Marketing/PR review of the public conversation.",
    HandoffTarget.QUEUE: "Take over in {queue}; the routing trace explains how it got here.",
}


def suggested_next_step(target: HandoffTarget, case: Case, queue: str | None) -> str:
    return NEXT_STEPS[target].format(channel=case.channel.value, queue=queue or case.queue)


def act(
    case: Case,
    action: AgentAction,
    playbook: Playbook,
    package: HandoffPackage | None = None,
) -> tuple[Case, list[Effect]]:
    at = action.at
    if case.status is CaseStatus.MERGED:
        raise ActionRefused(f"case {case.case_id} is merged into {case.merged_into}", status=409)
    if action.kind is ActionKind.HANDOFF:
        return _handoff(case, action, playbook, package)
    if action.kind is ActionKind.HANDOFF_OUTCOME:
        return _handoff_outcome(case, action, playbook)
    if action.kind is ActionKind.REPLY:
        raise ActionRefused("a reply is a mention of kind reply", status=422)
    _not_resolved(case, action)
    event = EventType.CASE_UPDATED
    effects: list[Effect] = []
    match action.kind:
        case ActionKind.ASSIGN:
            case = case.model_copy(update={"assignee": action.assignee or action.actor})
            effects = on_assigned(case, playbook, at)
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


def _not_resolved(case: Case, action: AgentAction) -> None:
    if case.status is CaseStatus.RESOLVED and action.kind not in (
        ActionKind.REOPEN,
        ActionKind.NOTE,
    ):
        raise ActionRefused(f"case {case.case_id} is resolved: reopen it first", status=409)


def _handoff(
    case: Case, action: AgentAction, playbook: Playbook, package: HandoffPackage | None
) -> tuple[Case, list[Effect]]:
    """To a private message (still the social channel: the clocks run on), another queue (the
    clocks move with it), or out of the social channel (phone, e-mail, store, legal,
    marketing): the response clocks stop there and the case waits for the target's outcome."""
    _not_resolved(case, action)
    if case.status is CaseStatus.HANDED_OFF:
        raise ActionRefused(f"case {case.case_id} is already handed off", status=409)
    if package is None:
        raise ActionRefused("a handoff needs its context package", status=422)
    effects: list[Effect] = []
    if package.target is HandoffTarget.QUEUE:
        if package.queue not in playbook.queues:
            raise ActionRefused(
                f"unknown queue {package.queue!r}; the playbook has {sorted(playbook.queues)}",
                status=422,
            )
        case, effects = requeue(
            playbook, case.model_copy(update={"queue": package.queue}), action.at
        )
    elif package.target is HandoffTarget.PRIVATE_MESSAGE:
        tags = [*case.tags, "private-thread"] if "private-thread" not in case.tags else case.tags
        case = case.model_copy(update={"tags": tags})
    else:
        running = [c for c in case.clocks if c.running and c.kind is not ClockKind.RESOLUTION]
        case = case.model_copy(
            update={
                "status": CaseStatus.HANDED_OFF,
                "clocks": [stop_clock(c, action.at) if c in running else c for c in case.clocks],
            }
        )
        effects = [cancel(case.case_id, c.kind) for c in running]
    return case, [
        EmitCaseEvent(
            EventType.CASE_HANDOFF,
            CaseEvent(case=case, action=action, handoff=Handoff(package=package)),
            cause=str(action.action_id),
        ),
        *effects,
    ]


def _handoff_outcome(
    case: Case, action: AgentAction, playbook: Playbook
) -> tuple[Case, list[Effect]]:
    """The target reports back: resolved there (measured as resolved outside the social
    channel), or returned to the social team, who owe an answer again."""
    if case.status is not CaseStatus.HANDED_OFF:
        raise ActionRefused(f"case {case.case_id} is not handed off", status=409)
    if action.outcome is None:
        raise ActionRefused("give the outcome: resolved or returned", status=422)
    if action.outcome == "resolved":
        case, effects = _resolve(case, action.at, action)
    else:
        case, effects = _reopen(case, action.at, action, playbook)
    reported = Handoff(outcome=action.outcome)
    return case, [
        EmitCaseEvent(e.event_type, e.payload.model_copy(update={"handoff": reported}), e.cause)
        if isinstance(e, EmitCaseEvent)
        else e
        for e in effects
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
