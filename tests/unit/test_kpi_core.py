from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.kpi.core import CaseFacts, left_channel, resolution_after, sla_report
from services.router.core import ActionInput, EmitCaseEvent, MentionInput, decide
from services.router.core.actions import suggested_next_step
from shared.events import (
    ActionKind,
    AgentAction,
    Channel,
    EventType,
    HandoffPackage,
    HandoffTarget,
    Priority,
)
from tests.unit.router.builders import classified, sample_playbook

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAYBOOK = sample_playbook()
AT = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def facts(
    n: int,
    *,
    channel: Channel = Channel.X,
    priority: Priority = Priority.P2,
    answered_after: timedelta | None = None,
    due_after: timedelta = timedelta(hours=1),
) -> CaseFacts:
    return CaseFacts(
        case_id=str(n),
        channel=channel,
        priority=priority,
        team="care-es",
        opened_at=OPENED,
        first_response_due_at=OPENED + due_after,
        first_response_at=OPENED + answered_after if answered_after is not None else None,
    )


def test_attainment_counts_answered_and_overdue_but_not_open_within_deadline() -> None:
    cases = [
        facts(1, answered_after=timedelta(minutes=10)),  # on time
        facts(2, answered_after=timedelta(minutes=90)),  # late
        facts(3),  # open, overdue at `now`
        facts(4, due_after=timedelta(hours=5)),  # open, still within deadline
        facts(5, channel=Channel.FACEBOOK, answered_after=timedelta(minutes=30)),
    ]
    report = sla_report(cases, now=OPENED + timedelta(hours=2))
    overall = report.overall
    assert (overall.cases, overall.responded, overall.responded_within_sla) == (5, 3, 2)
    assert (overall.breached_open, overall.backlog) == (1, 2)
    assert overall.attainment == pytest.approx(2 / 4)
    assert overall.response_rate == pytest.approx(3 / 5)
    assert overall.average_first_response_seconds == pytest.approx((10 + 90 + 30) * 60 / 3)
    assert report.by_channel[Channel.FACEBOOK].attainment == 1.0
    assert report.by_channel[Channel.X].attainment == pytest.approx(1 / 3)


def test_no_decided_case_means_no_attainment_yet() -> None:
    report = sla_report([facts(1, due_after=timedelta(hours=5))], now=OPENED)
    assert report.overall.attainment is None
    assert report.overall.average_first_response_seconds is None
    assert sla_report([], now=OPENED).overall.cases == 0


# -- handoffs and resolution in the social channel, read from the router's own events --------


def router_events(*steps: tuple[ActionKind, dict[str, Any]]) -> list[tuple[EventType, Any]]:
    """The case events the router's decider emits for a new case and then `steps` (actions)."""
    decision = decide(None, MentionInput(classified(AT, Priority.P3), "t"), PLAYBOOK, AT)
    events = [(e.event_type, e.payload) for e in decision.effects if isinstance(e, EmitCaseEvent)]
    for minutes, (kind, fields) in enumerate(steps, start=1):
        at = AT + timedelta(minutes=minutes)
        action = AgentAction(action_id=uuid.uuid4(), kind=kind, actor="ana", at=at, **fields)
        package = None
        if kind is ActionKind.HANDOFF:
            assert decision.case is not None
            target = HandoffTarget(str(fields["target"]))
            package = HandoffPackage(
                target=target,
                reason="needs the account",
                customer={},
                conversation=[],
                notes=[],
                clocks=decision.case.clocks,
                suggested_next_step=suggested_next_step(target, decision.case, None),
            )
        decision = decide(decision.case, ActionInput(action, package), PLAYBOOK, at)
        events += [
            (e.event_type, e.payload) for e in decision.effects if isinstance(e, EmitCaseEvent)
        ]
    return events


def facts_from(n: int, events: list[tuple[EventType, Any]]) -> CaseFacts:
    """What the KPI consumer keeps of a case's events, applied in order."""
    handed_off_at = None
    resolution = None
    for event_type, event in events:
        if left_channel(event_type, event):
            handed_off_at = handed_off_at or event.case.opened_at
        resolution = resolution_after(event_type, event) or resolution
    return facts(n).model_copy(update={"handed_off_at": handed_off_at, "resolution": resolution})


PHONE: dict[str, Any] = {"target": "phone"}


def test_handoff_and_social_resolution_rates_follow_the_router_events() -> None:
    cases = [
        # resolved by an agent in the channel
        facts_from(1, router_events((ActionKind.RESOLVE, {}))),
        # to a private message: still the social channel, then resolved there
        facts_from(
            2,
            router_events(
                (ActionKind.HANDOFF, {"target": "private_message"}), (ActionKind.RESOLVE, {})
            ),
        ),
        # to the phone, resolved there: handed off, not resolved in the channel
        facts_from(
            3,
            router_events(
                (ActionKind.HANDOFF, PHONE), (ActionKind.HANDOFF_OUTCOME, {"outcome": "resolved"})
            ),
        ),
        # to the phone, returned, then resolved in the channel
        facts_from(
            4,
            router_events(
                (ActionKind.HANDOFF, PHONE),
                (ActionKind.HANDOFF_OUTCOME, {"outcome": "returned"}),
                (ActionKind.RESOLVE, {}),
            ),
        ),
        # resolved, reopened: not resolved any more
        facts_from(5, router_events((ActionKind.RESOLVE, {}), (ActionKind.REOPEN, {}))),
        # resolved, then a note: still resolved in the channel
        facts_from(
            6, router_events((ActionKind.RESOLVE, {}), (ActionKind.NOTE, {"text": "closed"}))
        ),
        facts_from(7, router_events()),  # untouched
    ]
    assert [c.resolution for c in cases] == [
        "social",
        "social",
        "handoff",
        "social",
        "none",
        "social",
        "none",
    ]
    overall = sla_report(cases, now=OPENED).overall
    assert (overall.handed_off, overall.resolved_in_channel, overall.resolved_by_handoff) == (
        2,
        4,
        1,
    )
    assert overall.handoff_rate == pytest.approx(2 / 7)
    assert overall.social_resolution_rate == pytest.approx(4 / 7)
    summary = overall.summary()
    assert summary["handoff_rate"] == pytest.approx(2 / 7)
    assert summary["social_resolution_rate"] == pytest.approx(4 / 7)


def test_no_case_means_no_rates() -> None:
    overall = sla_report([], now=OPENED).overall
    assert overall.handoff_rate is None and overall.social_resolution_rate is None
