"""The KPI projector on the real broker and PostgreSQL when its commit is refused once
(SQLSTATE 40001 at COMMIT, from a deferred trigger): the batch is retried, not dead-lettered,
and the first-response histogram counts each answer once, after the commit that made it true."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import text

from services.kpi.handlers import KpiProjector
from shared.db import Database
from shared.events import (
    Case,
    CaseEvent,
    CaseStatus,
    Channel,
    Envelope,
    EventType,
    Priority,
    TraceContext,
    new_envelope,
    utcnow,
)
from shared.kafka import EventConsumer, EventProducer, ensure_topics
from shared.topics import CASES, Topic
from tests.integration.conftest import Infra, eventually, read_topic
from tests.integration.test_consumer import committed
from tests.unit.test_events import a_mention

CASE_COUNT = 3


def case_events(tenant: str) -> list[Envelope[CaseEvent]]:
    """Each case opened, then answered ten minutes later."""
    opened = utcnow() - timedelta(hours=1)
    events: list[Envelope[CaseEvent]] = []
    for n in range(CASE_COUNT):
        case = Case(
            case_id=uuid.uuid4(),
            tenant=tenant,
            conversation_key=f"x:kpi-{n}",
            channel=Channel.X,
            priority=Priority.P2,
            status=CaseStatus.OPEN,
            queue="care",
            language="es",
            author_handle="ana",
            opened_at=opened,
            first_response_due_at=opened + timedelta(hours=1),
            mention_count=1,
        )
        answered = case.model_copy(
            update={
                "status": CaseStatus.RESPONDED,
                "first_response_at": opened + timedelta(minutes=10),
            }
        )
        for event_type, state in (
            (EventType.CASE_CREATED, case),
            (EventType.CASE_RESPONDED, answered),
        ):
            events.append(
                new_envelope(
                    event_type,
                    CaseEvent(case=state, mention=a_mention()),
                    tenant=tenant,
                    subject=case.conversation_key,
                    trace=TraceContext.new(),
                )
            )
    return events


def answers_observed(tenant: str) -> float:
    labels = {"tenant": tenant, "channel": "x", "priority": "P2"}
    return REGISTRY.get_sample_value("scs_kpi_first_response_seconds_count", labels) or 0.0


async def test_a_refused_commit_is_retried_and_each_answer_is_counted_once(
    prepared: Infra,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    name = f"kpi_fail_once_{uuid.uuid4().hex[:8]}"
    database = Database(prepared.database_url)
    async with database.begin() as conn:
        await conn.execute(text(f"CREATE SEQUENCE {name}"))
        await conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF nextval('{name}') = 1 THEN "
                "RAISE EXCEPTION 'commit refused once' USING ERRCODE = '40001'; "
                "END IF; RETURN NULL; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON kpi_case_facts "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                f"WHEN (NEW.tenant = '{tenant}') EXECUTE FUNCTION {name}()"
            )
        )
    topic = Topic(f"test.kpi-{uuid.uuid4().hex[:8]}.v1", CASES.event_types, partitions=1)
    await ensure_topics(prepared.bootstrap, [topic])
    producer = EventProducer(prepared.bootstrap, "test")
    await producer.start()
    await producer.publish_many(topic, case_events(tenant))
    observed_before = answers_observed(tenant)
    projector = KpiProjector(database, [tenant], timedelta(days=1))
    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        topic=topic,
        group_id=group,
        bootstrap_servers=prepared.bootstrap,
        handler=projector.handle,
        producer=producer,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:

        async def all_committed() -> bool:
            return await committed(prepared, topic, group) == 2 * CASE_COUNT

        await eventually(all_committed, timeout=60)
        report = (await projector.refresh())[tenant]
        async with database.begin() as conn:
            trigger_runs = (await conn.execute(text(f"SELECT last_value FROM {name}"))).scalar()
    finally:
        await consumer.stop()
        await task
        await producer.stop()
        async with database.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON kpi_case_facts"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))
            await conn.execute(text(f"DROP SEQUENCE {name}"))
        await database.dispose()

    assert trigger_runs is not None and trigger_runs > CASE_COUNT, "the first commit never failed"
    assert report.overall.cases == CASE_COUNT and report.overall.responded == CASE_COUNT
    assert answers_observed(tenant) - observed_before == CASE_COUNT
    assert await read_topic(prepared.bootstrap, topic.dead_letter) == []
