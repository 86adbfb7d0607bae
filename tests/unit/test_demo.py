"""The demo receiver's one-line view of each webhook the router sends."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from services.router.applier import webhook_body
from services.router.core import EmitCaseEvent, MentionInput, TimerInput, decide
from services.router.core.effects import StartTimer
from shared.demo import describe
from shared.events import EventType, TraceContext, new_envelope
from tests.unit.router.builders import classified, sample_playbook

AT = datetime(2026, 11, 4, 11, 0, tzinfo=ZoneInfo("Europe/Madrid"))


def test_every_kind_of_case_webhook_has_a_line() -> None:
    playbook = sample_playbook()
    opened = decide(None, MentionInput(classified(AT), "t"), playbook, AT)
    timer = next(e.timer for e in opened.effects if isinstance(e, StartTimer))
    warned = decide(opened.case, TimerInput(timer), playbook, timer.due_at)
    lines = []
    for effect in [*opened.effects, *warned.effects]:
        if isinstance(effect, EmitCaseEvent):
            event = new_envelope(
                effect.event_type, effect.payload, tenant="t", subject="s", trace=TraceContext.new()
            )
            body = orjson.loads(webhook_body(event))
            lines.append(describe(body["type"], body["data"]))
    assert lines[0].startswith("case.created    P2 care-es") and "sin servicio" in lines[0]
    assert lines[1].startswith("sla.warning") and "first_response due" in lines[1]
    assert lines[2].startswith("case.escalated") and "to team-lead (warning)" in lines[2]
    assert EventType.SLA_WARNING.value in lines[1]
