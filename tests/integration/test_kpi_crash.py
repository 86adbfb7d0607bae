"""The KPI service killed after its database commit and before its offset commit (failpoint
`consumer.scs-kpi.before_commit`, exit 137 like kill -9): the case events are redelivered to the
restarted service and applied once; the figures count each case once."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.failpoints import CRASH_EXIT_STATUS
from shared.topics import CASES
from tests.integration.conftest import INGEST_AUTH, Stack, eventually, read_topic
from tests.integration.test_pipeline import mention_body

CONVERSATIONS = 3
FACTS_OF_CASES = text("SELECT mention_count FROM kpi_case_facts WHERE case_id::text = ANY(:ids)")
FACTS_OF_CASES = text("SELECT mention_count FROM kpi_case_facts WHERE case_id::text = ANY(:ids)")
COMPLAINT = "@AuroraTelecom sin fibra desde ayer y nadie responde, quiero una reclamación"


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


async def test_kpi_killed_between_its_commit_and_the_offset_commit_counts_each_event_once(
    stack: Stack,
) -> None:
    kpi = stack.services["kpi"]
    await eventually(lambda: kpi_idle(stack), what="the KPI service caught up and idle")
    cases_before = await sla_cases(stack)
    kpi.kill()
    kpi.start(SCS_FAILPOINTS="consumer.scs-kpi.before_commit")
    tag = uuid.uuid4().hex[:8]
    keys = {f"x:kpi-crash-{tag}-{n}".encode() for n in range(CONVERSATIONS)}
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        for n in range(CONVERSATIONS):
            response = await client.post(
                f"{stack.url('ingest')}/v1/mentions",
                json=mention_body(f"kpi-crash-{tag}-{n}", COMPLAINT),
            )
            assert response.status_code == 202, response.text

    async def ours() -> list[Any]:
        return [r for r in await read_topic(stack.infra.bootstrap, CASES.name) if r.key in keys]

    await eventually(lambda: kpi.process is not None and kpi.process.poll() is not None)
    assert kpi.process is not None and kpi.process.returncode == CRASH_EXIT_STATUS
    await eventually(lambda: _count(ours, CONVERSATIONS))
    records = await ours()
    event_ids = [orjson.loads(r.value)["id"] for r in records]
    case_ids = {orjson.loads(r.value)["data"]["case"]["case_id"] for r in records}
    engine = create_async_engine(stack.infra.database_url)
    try:
        committed = await committed_offsets(stack.infra.bootstrap)
        applied = await _applied(engine, event_ids)
        # The crash left work that PostgreSQL has and Kafka will deliver again.
        redelivered = [
            r
            for r in records
            if str(orjson.loads(r.value)["id"]) in applied and r.offset >= committed[r.partition]
        ]
        kpi_crashed_after_commit = bool(redelivered)

        kpi.start()
        await kpi.wait_ready()

        async def caught_up() -> bool:
            done = await committed_offsets(stack.infra.bootstrap)
            return all(done[r.partition] > r.offset for r in records)

        await eventually(caught_up, timeout=60)
        assert await _applied(engine, event_ids) == set(event_ids)
        async with engine.connect() as conn:
            result = await conn.execute(FACTS_OF_CASES, {"ids": list(case_ids)})
            facts = list(result.scalars())
    finally:
        await engine.dispose()
    assert kpi_crashed_after_commit, "the failpoint did not fire between the two commits"
    assert sorted(facts) == [1] * CONVERSATIONS

    async def counted_once() -> bool:
        return await sla_cases(stack) == cases_before + CONVERSATIONS

    await eventually(counted_once, timeout=30)


async def _count(ours: Any, expected: int) -> bool:
    return len(await ours()) >= expected


async def _applied(engine: Any, event_ids: list[str]) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id::text FROM kpi_applied_events WHERE event_id::text = ANY(:ids)"),
            {"ids": event_ids},
        )
        return {row[0] for row in rows}
