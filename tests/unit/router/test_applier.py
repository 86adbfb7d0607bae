"""The applier's rows, before any database: event ids and fan-out."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from services.router.applier import Applier
from services.router.core import EmitCaseEvent, MentionInput, decide
from services.router.repository import Subscription
from shared.events import CaseEvent, Escalation, EventType, TraceContext
from tests.unit.router.builders import classified, sample_playbook

SATURDAY_NIGHT = datetime(2026, 11, 28, 23, 0, tzinfo=ZoneInfo("Europe/Madrid"))


def test_two_cases_escalated_by_the_same_step_at_the_same_deadline_are_two_events() -> None:
    # Both opened out of hours: same warning time on Monday, same ladder step, same level.
    playbook = sample_playbook()
    cases = [
        decide(
            None,
            MentionInput(classified(SATURDAY_NIGHT, platform_id=str(n), conversation=f"c{n}"), "t"),
            playbook,
            SATURDAY_NIGHT,
        ).case
        for n in (1, 2)
    ]
    endpoint = Subscription(uuid.uuid4(), frozenset({EventType.CASE_ESCALATED.value}))
    applier = Applier("t", [endpoint])
    for case in cases:
        assert case is not None
        escalated = CaseEvent(
            case=case, escalation=Escalation(target="team-lead", trigger="warning", level=1)
        )
        applier.apply(
            case,
            [
                EmitCaseEvent(
                    EventType.CASE_ESCALATED, escalated, cause="2026-11-30T09:48:00+01:00|0|1"
                )
            ],
            TraceContext.new(),
        )
    assert len({row["event_id"] for row in applier.outbox}) == 2
    assert len({row["delivery_id"] for row in applier.deliveries}) == 2


def test_a_cases_events_are_numbered_in_order_across_decisions_and_the_case_keeps_the_last() -> (
    None
):
    playbook = sample_playbook()
    opened = decide(None, MentionInput(classified(SATURDAY_NIGHT), "t"), playbook, SATURDAY_NIGHT)
    applier = Applier(
        "t", [Subscription(uuid.uuid4(), frozenset({"case.created", "case.updated"}))]
    )
    applier.apply(opened.case, opened.effects, TraceContext.new())
    assert opened.case is not None
    later = SATURDAY_NIGHT.replace(minute=30)
    again = decide(
        opened.case, MentionInput(classified(later, platform_id="2"), "t"), playbook, later
    )
    applier.apply(again.case, again.effects, TraceContext.new())
    sequences = [orjson.loads(row["value"])["data"]["case"]["sequence"] for row in applier.outbox]
    assert sequences == [1, 2]
    assert applier.cases[opened.case.case_id].sequence == 2
