"""The KPI service killed after its database commit and before its offset commit (failpoint
`consumer.scs-kpi.before_commit`, exit 137 like kill -9): the case events are redelivered to the
restarted service and applied once; the figures count each case once, and the restarted process
observes a first response only for events it had not applied before the crash."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.failpoints import CRASH_EXIT_STATUS
from shared.topics import CASES
from tests.integration.conftest import INGEST_AUTH, Stack, eventually, read_topic
from tests.integration.test_pipeline import mention_body

CONVERSATIONS = 3
FACTS_OF_CASES = text(
    "SELECT first_response_at IS NOT NULL FROM kpi_case_facts WHERE case_id::text = ANY(:ids)"
)
COMPLAINT = "@AuroraTelecom sin fibra desde ayer y nadie responde, quiero una reclamación"
REPLY = "Hola, te escribimos por privado para revisarlo ya."


async def committed_offsets(bootstrap: str) -> dict[int, int]:
    """Offsets the KPI group committed, per partition of the case topic."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="scs-kpi")
    await probe.start()
    try:
        partitions = [TopicPartition(CASES.name, p) for p in range(CASES.partitions)]
        return {tp.partition: (await probe.committed(tp)) or 0 for tp in partitions}
    finally:
        await probe.stop()


async def kpi_idle(stack: Stack) -> bool:
    """The router has nothing left to publish (no due timer, an empty outbox) and the KPI group
    has committed every case event: the restarted service's first batch is then this test's,
    not the tail of an earlier test (e.g. the timers of mentions dated months ago)."""
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.connect() as conn:
            waiting = await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM router_timers "
                    "WHERE fired_at IS NULL AND due_at <= now()) "
                    "+ (SELECT count(*) FROM router_outbox WHERE published_at IS NULL)"
                )
            )
            if waiting.scalar_one():
                return False
    finally:
        await engine.dispose()
    probe = AIOKafkaConsumer(bootstrap_servers=stack.infra.bootstrap)
    await probe.start()
    try:
        partitions = [TopicPartition(CASES.name, p) for p in range(CASES.partitions)]
        end = {tp.partition: offset for tp, offset in (await probe.end_offsets(partitions)).items()}
    finally:
        await probe.stop()
    return end == await committed_offsets(stack.infra.bootstrap)


async def sla_cases(stack: Stack) -> int:
    async with httpx.AsyncClient() as client:
        report = (await client.get(f"{stack.url('kpi')}/v1/kpis/sla")).json()
    return int(report["overall"]["cases"])


async def first_responses_observed(stack: Stack) -> float:
    """How many first responses this KPI process has observed (its histogram's count)."""
    async with httpx.AsyncClient() as client:
        exposition = (await client.get(f"{stack.url('kpi')}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "scs_kpi_first_response_seconds_count"
    )


async def post(stack: Stack, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(f"{stack.url('ingest')}/v1/mentions", json=body)
    assert response.status_code == 202, response.text


async def test_kpi_killed_between_its_commit_and_the_offset_commit_counts_each_event_once(
    stack: Stack,
) -> None:
    kpi = stack.services["kpi"]
    await eventually(lambda: kpi_idle(stack), what="the KPI service caught up and idle")
    cases_before = await sla_cases(stack)
    kpi.kill()
    # With the KPI service down, each case's created and responded events wait on the topic,
    # so the first batch of the crashing process holds answers that are then redelivered.
    tag = uuid.uuid4().hex[:8]
    conversations = [f"kpi-crash-{tag}-{n}" for n in range(CONVERSATIONS)]
    keys = {f"x:{conversation}".encode() for conversation in conversations}

    async def ours(event_type: str) -> list[Any]:
        return [
            r
            for r in await read_topic(stack.infra.bootstrap, CASES.name)
            if r.key in keys and orjson.loads(r.value)["type"] == event_type
        ]

    for conversation in conversations:
        await post(stack, mention_body(conversation, COMPLAINT))
    await eventually(lambda: _count(ours, "case.created", CONVERSATIONS), what="cases opened")
    for conversation in conversations:
        await post(stack, mention_body(conversation, REPLY, kind="reply", handle="AuroraTelecom"))
    await eventually(lambda: _count(ours, "case.responded", CONVERSATIONS), what="cases answered")

    pending_from = await committed_offsets(stack.infra.bootstrap)
    kpi.start(SCS_FAILPOINTS="consumer.scs-kpi.before_commit")
    await eventually(lambda: kpi.process is not None and kpi.process.poll() is not None)
    assert kpi.process is not None and kpi.process.returncode == CRASH_EXIT_STATUS
    assert await committed_offsets(stack.infra.bootstrap) == pending_from

    # test_dead_letters.py puts undecodable records keyed `poison-...` on every topic.
    pending = [
        r
        for r in await read_topic(stack.infra.bootstrap, CASES.name)
        if r.offset >= pending_from[r.partition] and not (r.key or b"").startswith(b"poison-")
    ]
    records = [r for r in pending if r.key in keys]
    event_ids = [str(orjson.loads(r.value)["id"]) for r in records]
    case_ids = {orjson.loads(r.value)["data"]["case"]["case_id"] for r in records}
    engine = create_async_engine(stack.infra.database_url)
    try:
        applied = await _applied(engine, [str(orjson.loads(r.value)["id"]) for r in pending])
        answers = [
            str(orjson.loads(r.value)["id"])
            for r in pending
            if orjson.loads(r.value)["type"] == "case.responded"
        ]
        redelivered_answers = [a for a in answers if a in applied]
        fresh_answers = [a for a in answers if a not in applied]

        kpi.start()
        await kpi.wait_ready()

        async def caught_up() -> bool:
            done = await committed_offsets(stack.infra.bootstrap)
            return all(done[r.partition] > r.offset for r in pending)

        await eventually(caught_up, timeout=60, what="the KPI group past every pending record")
        assert await _applied(engine, event_ids) == set(event_ids)
        async with engine.connect() as conn:
            result = await conn.execute(FACTS_OF_CASES, {"ids": list(case_ids)})
            facts = list(result.scalars())
    finally:
        await engine.dispose()
    assert redelivered_answers, "no answer was applied and then redelivered: nothing was proven"
    # An answer applied before the crash is not observed again by the restarted process.
    assert await first_responses_observed(stack) == len(fresh_answers)
    assert facts == [True] * CONVERSATIONS

    async def counted_once() -> bool:
        return await sla_cases(stack) == cases_before + CONVERSATIONS

    await eventually(counted_once, timeout=30, what="each case counted once")


async def _count(ours: Any, event_type: str, expected: int) -> bool:
    return len(await ours(event_type)) >= expected


async def _applied(engine: Any, event_ids: list[str]) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id::text FROM kpi_applied_events WHERE event_id::text = ANY(:ids)"),
            {"ids": event_ids},
        )
        return {row[0] for row in rows}
