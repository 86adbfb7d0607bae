"""The sample playbook on the real broker and database: business hours seen from a webhook,
SLA timers that fire once with two routers, and a router killed while timers fire."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from shared.topics import CASES
from tests.integration.conftest import (
    INGEST_AUTH,
    SCS,
    Receiver,
    ServiceProcess,
    Stack,
    eventually,
    read_topic,
)
from tests.integration.test_pipeline import for_conversation, mention_body
from tests.integration.test_webhook_retries import query
from tests.unit.router.builders import SAMPLE

MADRID = ZoneInfo("Europe/Madrid")
COMPLAINT = (
    "@AuroraTelecom llevo tres días sin fibra y nadie me da solución, quiero una reclamación"
)


async def post_at(stack: Stack, conversation: str, created_at: datetime) -> None:
    body = mention_body(conversation, COMPLAINT) | {"created_at": created_at.isoformat()}
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(f"{stack.url('ingest')}/v1/mentions", json=body)
    assert response.status_code == 202, response.text


async def case_created(receiver: Receiver, conversation: str) -> dict[str, Any]:
    matches = for_conversation(conversation, "case.created")
    await eventually(lambda: bool(receiver.matching(matches)), what="case.created webhook")
    (event,) = receiver.matching(matches)
    return event


def in_madrid_hours(due: datetime) -> bool:
    local = due.astimezone(MADRID)
    if local.weekday() < 5:
        return time(9) <= local.time() <= time(19)
    return local.weekday() == 5 and time(10) <= local.time() <= time(14)


async def test_a_saturday_night_complaint_is_acknowledged_and_due_in_monday_hours(
    stack: Stack, receiver: Receiver
) -> None:
    conversation = f"saturday-{uuid.uuid4().hex}"
    await post_at(stack, conversation, datetime(2026, 11, 28, 23, 0, tzinfo=MADRID))
    event = await case_created(receiver, conversation)
    case, routing = event["data"]["case"], event["data"]["routing"]
    assert case["queue"] == "care-es" and case["status"] == "open"
    assert routing["out_of_hours"] is True
    assert routing["next_open_at"] == "2026-11-30T09:00:00+01:00"
    assert "30/11 09:00" in routing["acknowledgement"]
    assert [rule["rule"] for rule in routing["trace"] if rule["matched"]] == ["out-of-hours"]
    due = datetime.fromisoformat(case["first_response_due_at"])
    assert due.utcoffset() == timedelta(hours=1)  # the queue's time, with its offset
    assert due.date().isoformat() == "2026-11-30" and in_madrid_hours(due)


async def test_a_complaint_on_the_eve_of_a_national_holiday_is_due_after_it(
    stack: Stack, receiver: Receiver
) -> None:
    conversation = f"holiday-eve-{uuid.uuid4().hex}"
    # Tuesday 6 January 2026 (Epiphany) is a national holiday in Spain.
    await post_at(stack, conversation, datetime(2026, 1, 5, 18, 30, tzinfo=MADRID))
    case = (await case_created(receiver, conversation))["data"]["case"]
    due = datetime.fromisoformat(case["first_response_due_at"])
    assert due.date().isoformat() == "2026-01-07" and in_madrid_hours(due)


async def case_events(stack: Stack, conversations: set[str]) -> list[dict[str, Any]]:
    """Every case event of these conversations on the router's topic."""
    keys = {f"x:{c}".encode() for c in conversations}
    records = await read_topic(stack.infra.bootstrap, CASES.name)
    # Other tests put poison on the topic: only this test's keys are read.
    return [orjson.loads(record.value) for record in records if record.key in keys]


def clock_of(event: dict[str, Any]) -> str | None:
    """The clock an SLA event is about (first response, resolution...); None for others."""
    sla = event["data"].get("sla")
    return str(sla["clock"]["kind"]) if sla else None


def per_conversation(events: list[dict[str, Any]], event_type: str) -> Counter[str]:
    """Events of this type per conversation; for SLA events, of the first-response clock."""
    return Counter(
        e["subject"]
        for e in events
        if e["type"] == event_type and clock_of(e) in (None, "first_response")
    )


def assert_each_once(events: list[dict[str, Any]], conversations: set[str]) -> None:
    """Every conversation: one case.created and one warning and one breach of its first-response
    clock; no (conversation, event type, clock, escalation step) announced under two ids."""
    # At-least-once to Kafka: after a crash a record may be published again, under its id.
    unique = list({e["id"]: e for e in events}.values())
    for event_type in ("case.created", "sla.warning", "sla.breached"):
        assert per_conversation(unique, event_type) == Counter(
            {f"x:{c}": 1 for c in conversations}
        ), event_type
    counts = Counter((e["subject"], e["type"], clock_of(e), level_of(e)) for e in unique)
    assert max(counts.values()) == 1, counts.most_common(3)


def level_of(event: dict[str, Any]) -> int | None:
    """The ladder step a case.escalated is (each step once per case)."""
    escalation = event["data"].get("escalation")
    return int(escalation["level"]) if escalation else None


@pytest.fixture
async def second_router(stack: Stack) -> AsyncIterator[ServiceProcess]:
    first = stack.services["router"]
    other = ServiceProcess("router", first._env, first.log_path.parent, port=18013)
    other.start()
    await other.wait_ready()
    yield other
    other.terminate()


async def test_breaches_fire_exactly_once_with_two_routers(
    stack: Stack, second_router: ServiceProcess
) -> None:
    # Mentions delivered two days late: their deadlines have passed, so their timers are due at
    # once and both routers race for them.
    conversations = {f"two-routers-{uuid.uuid4().hex[:12]}" for _ in range(12)}
    late = datetime.now(UTC) - timedelta(days=2)
    for conversation in conversations:
        await post_at(stack, conversation, late)

    async def all_breached() -> bool:
        events = await case_events(stack, conversations)
        return len(per_conversation(events, "sla.breached")) == len(conversations)

    await eventually(all_breached, timeout=90, what="an sla.breached per conversation")
    await eventually(
        lambda: _no_pending_due(stack, conversations), timeout=30, what="no due timer left"
    )
    events = await case_events(stack, conversations)
    assert_each_once(events, conversations)
    assert len({e["id"] for e in events}) == len(events)  # and no record twice on the topic


async def _no_pending_due(stack: Stack, conversations: set[str]) -> bool:
    rows = await query(
        stack,
        "SELECT count(*) FROM router_timers t JOIN router_cases c USING (case_id) "
        "WHERE t.fired_at IS NULL AND t.due_at <= now() AND c.conversation_key = ANY(:keys)",
        keys=[f"x:{c}" for c in conversations],
    )
    return bool(rows[0][0] == 0)


@pytest.mark.disruptive
async def test_a_router_killed_while_timers_fire_loses_no_timer_and_doubles_no_event(
    stack: Stack,
) -> None:
    router = stack.services["router"]
    conversations = {f"kill-timers-{uuid.uuid4().hex[:12]}" for _ in range(80)}
    late = datetime.now(UTC) - timedelta(days=2)
    for conversation in conversations:
        await post_at(stack, conversation, late)

    async def some_breached() -> bool:
        events = await case_events(stack, conversations)
        return len(per_conversation(events, "sla.breached")) >= 5

    await eventually(some_breached, timeout=90, what="the first breaches")
    router.kill()
    router.start()
    await router.wait_ready()

    async def all_breached() -> bool:
        events = await case_events(stack, conversations)
        return len(per_conversation(events, "sla.breached")) == len(conversations)

    await eventually(all_breached, timeout=120, what="an sla.breached per conversation")
    await eventually(
        lambda: _no_pending_due(stack, conversations), timeout=30, what="no due timer left"
    )
    assert_each_once(await case_events(stack, conversations), conversations)


async def test_replay_shows_how_a_changed_playbook_would_have_routed_stored_mentions(
    stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    conversation = f"replay-{uuid.uuid4().hex}"
    # A time of its own (microseconds from a random id), so the window holds this mention only.
    written = datetime(2026, 11, 25, 11, 0, tzinfo=MADRID).replace(
        microsecond=uuid.uuid4().int % 1_000_000
    )
    await post_at(stack, conversation, written)
    await case_created(receiver, conversation)
    # The changed playbook sends every Spanish mention to the Mexican team.
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        SAMPLE.read_text(encoding="utf-8").replace(
            "rules:\n",
            "rules:\n  - {name: all-to-mexico, when: {language: [es]}, then: {queue: care-mx}}\n",
            1,
        )
    )
    window = [
        "--from",
        (written - timedelta(milliseconds=1)).isoformat(),
        "--to",
        (written + timedelta(milliseconds=1)).isoformat(),
    ]
    result = await replay(stack, changed, window)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1 mentions from"), result.stdout + result.stderr
    assert "1 would be routed differently" in lines[1]
    assert "care-es" in lines[2] and "-> care-mx" in lines[2]
    unchanged = await replay(stack, SAMPLE, window)
    assert "0 would be routed differently" in unchanged.stdout, unchanged.stdout + unchanged.stderr


async def replay(
    stack: Stack, playbook: Path, window: list[str]
) -> subprocess.CompletedProcess[str]:
    result = await asyncio.to_thread(
        subprocess.run,
        [str(SCS), "playbook", "replay", str(playbook), *window],
        env={**os.environ, "SCS_DATABASE_URL": stack.infra.database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result
