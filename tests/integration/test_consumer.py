"""The shared consumer on the real broker: retries until the work is durable, isolates and
dead-letters the one event that can never succeed, commits only after the handler, rides out a
database outage without leaving its group, and a dead consumer makes the service unready."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import Database
from shared.events import EventType, Mention, TraceContext, new_envelope
from shared.kafka import (
    EventConsumer,
    EventProducer,
    Failure,
    classify_failure,
    describe_error,
    ensure_topics,
)
from shared.service import Service, create_service_app
from shared.settings import ServiceSettings
from shared.topics import Topic
from tests.integration.conftest import Infra, eventually, read_topic
from tests.unit.test_events import a_mention


def mentions(count: int) -> list[Mention]:
    return [
        a_mention(platform_id=str(n), mention_id=Mention.id_for(a_mention().channel, str(n)))
        for n in range(count)
    ]


@dataclass
class Consuming:
    topic: Topic
    group: str
    consumer: EventConsumer


@contextlib.asynccontextmanager
async def consuming(
    infra: Infra, handler: Any, *, max_poll_interval_ms: int = 300_000
) -> AsyncIterator[Consuming]:
    """Five mentions on a fresh topic, consumed by `handler` until the block ends."""
    topic = Topic(
        f"test.consumer-{uuid.uuid4().hex[:8]}.v1",
        frozenset({EventType.MENTION_RECEIVED}),
        partitions=1,
    )
    await ensure_topics(infra.bootstrap, [topic])
    producer = EventProducer(infra.bootstrap, "test")
    await producer.start()
    await producer.publish_many(
        topic,
        [
            new_envelope(
                EventType.MENTION_RECEIVED,
                m,
                tenant="t",
                subject="x:conv",
                trace=TraceContext.new(),
            )
            for m in mentions(5)
        ],
    )
    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer = EventConsumer(
        topic=topic,
        group_id=group,
        bootstrap_servers=infra.bootstrap,
        handler=handler,
        producer=producer,
        max_poll_interval_ms=max_poll_interval_ms,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        yield Consuming(topic, group, consumer)
    finally:
        await consumer.stop()
        await task
        await producer.stop()


async def committed(infra: Infra, topic: Topic, group: str) -> int | None:
    probe = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, group_id=group)
    await probe.start()
    try:
        offset = await probe.committed(TopicPartition(topic.name, 0))
        return None if offset is None else int(offset)
    finally:
        await probe.stop()


async def test_transient_failures_are_retried_and_committed_once(prepared: Infra) -> None:
    calls: list[int] = []
    handled: list[str] = []

    async def flaky(envelopes: list[Any]) -> None:
        calls.append(len(envelopes))
        if len(calls) <= 2:
            raise OSError("database down")
        handled.extend(str(e.data.platform_id) for e in envelopes)

    async with consuming(prepared, flaky) as run:
        await eventually(lambda: len(handled) == 5, timeout=60)
        await eventually(run.consumer.is_running)
    assert sorted(handled) == ["0", "1", "2", "3", "4"]
    assert calls[:2] == [5, 5]  # the whole batch was retried, nothing skipped
    assert await committed(prepared, run.topic, run.group) == 5


async def test_an_event_that_always_fails_is_isolated_and_dead_lettered(prepared: Infra) -> None:
    handled: list[str] = []

    async def picky(envelopes: list[Any]) -> None:
        for envelope in envelopes:
            if envelope.data.platform_id == "3":
                raise ValueError(f"this one can never be processed: {envelope.data.text}")
        handled.extend(str(e.data.platform_id) for e in envelopes)

    async with consuming(prepared, picky) as run:
        await eventually(lambda: len(handled) == 4, timeout=60)
    assert sorted(handled) == ["0", "1", "2", "4"]
    dead = await read_topic(prepared.bootstrap, run.topic.dead_letter)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    # The error names the failure, never the customer's text the exception quoted.
    assert headers["scs-dlq-error"] == b"ValueError"
    assert a_mention().text.encode() not in b"".join(headers.values())
    assert await committed(prepared, run.topic, run.group) == 5


async def test_a_handler_bug_that_fails_every_event_waits_instead_of_dead_lettering_all(
    prepared: Infra,
) -> None:
    """A deployed bug (every event raises) must not drain the stream into the dead-letter topic:
    the batch waits, paused, and goes through once the handler works again."""
    broken = True
    attempts: list[int] = []
    handled: list[str] = []

    async def buggy_until_fixed(envelopes: list[Any]) -> None:
        attempts.append(len(envelopes))
        if broken:
            raise KeyError("a bug in the handler")
        handled.extend(str(e.data.platform_id) for e in envelopes)

    async with consuming(prepared, buggy_until_fixed) as run:
        # past the unexpected-failure budget and through isolation, one event at a time
        await eventually(lambda: attempts.count(1) >= 10, timeout=60, what="isolated retries")
        assert handled == [] and await committed(prepared, run.topic, run.group) is None
        broken = False  # the fix is deployed
        await eventually(lambda: len(handled) == 5, timeout=60, what="all five handled")

        async def all_committed() -> bool:
            return await committed(prepared, run.topic, run.group) == 5

        await eventually(all_committed, timeout=30, what="the commit of offset 5")
    assert sorted(handled) == ["0", "1", "2", "3", "4"]
    assert await read_topic(prepared.bootstrap, run.topic.dead_letter) == []


async def test_a_database_outage_stalls_the_partition_in_its_group_then_commits_once(
    prepared: Infra,
) -> None:
    """Open connections killed by an admin shutdown (SQLSTATE 57P01) for longer than
    max.poll.interval: the batch waits, paused, the member keeps its partitions, nothing is
    dead-lettered, and each event is applied once when PostgreSQL is back."""
    database = Database(prepared.database_url)
    outage_ends = time.monotonic() + 8
    failures: list[str] = []
    handled: list[str] = []

    async def writes_to_postgresql(envelopes: list[Any]) -> None:
        async with database.begin() as conn:
            if time.monotonic() < outage_ends:
                await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            await conn.execute(text("SELECT 1"))
        handled.extend(str(e.data.platform_id) for e in envelopes)

    def count_failures(record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("batch failed"):
            failures.append(str(getattr(record, "failure", "")))
        return True

    logging.getLogger("shared.kafka").addFilter(count_failures)
    try:
        async with consuming(prepared, writes_to_postgresql, max_poll_interval_ms=3000) as run:
            await eventually(lambda: len(handled) == 5, timeout=60)
            await eventually(lambda: paused(run.topic) == 0, timeout=10)
    finally:
        logging.getLogger("shared.kafka").removeFilter(count_failures)
        await database.dispose()
    assert sorted(handled) == ["0", "1", "2", "3", "4"]  # once each, after the outage
    assert len(failures) >= 3 and set(failures) == {"transient"}, failures
    assert rebalances(run.topic) == 1, "the member left its group during the outage"
    assert await read_topic(prepared.bootstrap, run.topic.dead_letter) == []
    assert await committed(prepared, run.topic, run.group) == 5


def rebalances(topic: Topic) -> float:
    value = REGISTRY.get_sample_value("scs_kafka_consumer_rebalances_total", {"topic": topic.name})
    return value or 0.0


def paused(topic: Topic) -> float:
    value = REGISTRY.get_sample_value("scs_kafka_consumer_paused_partitions", {"topic": topic.name})
    return value or 0.0


class OneConsumerService(Service[ServiceSettings]):
    name = "probe"
    uses_database = False

    def __init__(self, settings: ServiceSettings, topic: Topic) -> None:
        super().__init__(settings)
        self.topic = topic

    async def on_connected(self) -> None:
        async def ignore(envelopes: list[Any]) -> None:
            return None

        self.consumers.append(
            EventConsumer(
                topic=self.topic,
                group_id=f"g-{uuid.uuid4().hex[:6]}",
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                handler=ignore,
                producer=self.producer,
            )
        )


async def test_readyz_turns_false_when_a_consumer_task_has_died(prepared: Infra) -> None:
    topic = Topic(f"test.readyz-{uuid.uuid4().hex[:8]}.v1", frozenset({EventType.MENTION_RECEIVED}))
    await ensure_topics(prepared.bootstrap, [topic])
    service = OneConsumerService(
        ServiceSettings(port=1, kafka_bootstrap_servers=prepared.bootstrap), topic
    )
    app = create_service_app(service, [], title="probe", description="probe")
    await service.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://probe"
        ) as client:

            async def status() -> int:
                return (await client.get("/readyz")).status_code

            await eventually(lambda: status_is(status, 200), timeout=30)
            # The consumer's Kafka client closes under its loop (as after a fatal client
            # error): the task ends while the service still runs.
            await service.consumers[0]._consumer.stop()
            await eventually(lambda: status_is(status, 503), timeout=10)
            body = (await client.get("/readyz")).json()
            assert body["checks"] == {"kafka": True, "consumers": False}
    finally:
        await service.stop()


async def status_is(status: Any, expected: int) -> bool:
    return bool(await status() == expected)


async def test_database_errors_carry_no_statement_parameters_and_are_classified(
    prepared: Infra,
) -> None:
    """hide_parameters: a failing statement's values (customer text) are not in its message."""
    secret = "Lucía García, calle Mayor 5, 4111 1111 1111 1111"
    database = Database(prepared.database_url)
    try:
        with pytest.raises(DBAPIError) as missing_table:
            async with database.begin() as conn:
                await conn.execute(text("SELECT :v FROM no_such_table"), {"v": secret})
        with pytest.raises(DBAPIError) as bad_value:
            async with database.begin() as conn:
                await conn.execute(
                    text("INSERT INTO kpi_case_facts (case_id) VALUES (:v)"), {"v": uuid.uuid4()}
                )
        with pytest.raises(DBAPIError) as data_error:
            async with database.begin() as conn:
                await conn.execute(text("SELECT CAST(:v AS integer)"), {"v": secret})
    finally:
        await database.dispose()
    # PostgreSQL itself quotes the bad value; what is logged and dead-lettered does not.
    assert "4111" in str(data_error.value)
    assert describe_error(data_error.value) in {  # asyncpg's own check, or the server's
        "DBAPIError (SQLSTATE 22000)",
        "DBAPIError (SQLSTATE 22P02)",
    }
    assert classify_failure(data_error.value) is Failure.POISON
    assert "4111" not in str(missing_table.value) and "Lucía" not in str(missing_table.value)
    assert "parameters hidden" in str(missing_table.value)
    assert classify_failure(missing_table.value) is Failure.TRANSIENT  # 42P01: awaits a migration
    assert classify_failure(bad_value.value) is Failure.UNEXPECTED  # 23502: not null violated


async def test_topics_get_the_configured_replication_or_a_clear_refusal(prepared: Infra) -> None:
    topic = Topic(f"test.topics-{uuid.uuid4().hex[:8]}.v1", frozenset({EventType.CASE_CREATED}))
    # One broker cannot hold two replicas: the broker's refusal must not pass in silence.
    with pytest.raises(KafkaError, match=f"cannot create topic {topic.name}"):
        await ensure_topics(
            prepared.bootstrap, [topic], replication_factor=2, min_insync_replicas=2
        )
    created = await ensure_topics(prepared.bootstrap, [topic], min_insync_replicas=1)
    assert created == [topic.name, topic.dead_letter]
    admin = AIOKafkaAdminClient(bootstrap_servers=prepared.bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in created]
        )
    finally:
        await admin.close()
    configs = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for resource in response.resources
    }
    assert configs[topic.name]["min.insync.replicas"] == "1"
    assert configs[topic.dead_letter]["retention.ms"] == str(topic.dead_letter_retention_ms)
