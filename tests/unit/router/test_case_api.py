"""Pieces of the case API that need no database: the SLA state of a case and the cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.router.api import decode_cursor, encode_cursor
from services.router.core import MentionInput, TimerInput, decide
from services.router.core.effects import StartTimer, TimerKind
from services.router.core.sla import sla_state
from shared.problems import Problem
from tests.unit.router.builders import classified, reply, sample_playbook

AT = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def test_the_sla_state_is_the_worst_running_clock_else_how_they_ended() -> None:
    playbook = sample_playbook()
    opened = decide(None, MentionInput(classified(AT), "t"), playbook, AT)
    assert opened.case is not None and sla_state(opened.case) == "running"
    breach = next(
        e.timer
        for e in opened.effects
        if isinstance(e, StartTimer)
        and e.timer.kind is TimerKind.SLA_BREACH
        and e.timer.clock is not None
        and e.timer.clock.value == "first_response"
    )
    breached = decide(opened.case, TimerInput(breach), playbook, breach.due_at)
    assert breached.case is not None and sla_state(breached.case) == "breached"
    late = decide(
        breached.case, MentionInput(reply(breach.due_at + timedelta(minutes=1)), "t"), playbook, AT
    )
    assert late.case is not None
    assert sla_state(late.case) == "running"  # the resolution clock still runs


def test_a_cursor_round_trips_and_a_forged_one_is_a_422() -> None:
    case = decide(None, MentionInput(classified(AT), "t"), sample_playbook(), AT).case
    assert case is not None
    assert decode_cursor(encode_cursor(AT, case.case_id)) == (AT, case.case_id)
    for forged in ("not-a-cursor", "W10", "WyJ4IiwgInkiXQ"):
        with pytest.raises(Problem) as raised:
            decode_cursor(forged)
        assert raised.value.status == 422
