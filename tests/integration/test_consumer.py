"""The shared consumer on the real broker: retries until the work is durable, isolates and
dead-letters the one event that can never succeed, commits only after the handler."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import EventType, Mention, TraceContext, new_envelope
from shared.kafka import EventConsumer, EventProducer, ensure_topics
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
async def consuming(infra: Infra, handler: Any) -> AsyncIterator[Consuming]:
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
        if any(e.data.platform_id == "3" for e in envelopes):
            raise ValueError("this one can never be processed")
        handled.extend(str(e.data.platform_id) for e in envelopes)

    async with consuming(prepared, picky) as run:
        await eventually(lambda: len(handled) == 4, timeout=60)
    assert sorted(handled) == ["0", "1", "2", "4"]
    dead = await read_topic(prepared.bootstrap, run.topic.dead_letter)
    assert len(dead) == 1
    assert b"can never be processed" in dict(dead[0].headers)["scs-dlq-error"]
    assert await committed(prepared, run.topic, run.group) == 5
