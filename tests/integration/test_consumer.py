"""The shared consumer on the real broker: retries until the work is durable, isolates and
dead-letters the one event that can never succeed, commits only after the handler."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import EventType, Mention, TraceContext, new_envelope
from shared.kafka import EventConsumer, EventProducer, ensure_topics
from shared.topics import Topic
from tests.integration.conftest import Infra, eventually, read_topic
from tests.unit.test_events import a_mention


def fresh_topic() -> Topic:
    return Topic(
        f"test.consumer-{uuid.uuid4().hex[:8]}.v1",
        frozenset({EventType.MENTION_RECEIVED}),
        partitions=1,
    )


def mentions(count: int) -> list[Mention]:
    return [
        a_mention(platform_id=str(n), mention_id=Mention.id_for(a_mention().channel, str(n)))
        for n in range(count)
    ]


async def run_consumer(
    infra: Infra, topic: Topic, handler: Any, group: str
) -> tuple[EventConsumer, EventProducer, asyncio.Task[None]]:
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
    consumer = EventConsumer(
        topic=topic,
        group_id=group,
        bootstrap_servers=infra.bootstrap,
        handler=handler,
        producer=producer,
    )
    await consumer.start()
    return consumer, producer, asyncio.create_task(consumer.run())


async def committed(infra: Infra, topic: Topic, group: str) -> int | None:
    probe = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, group_id=group)
    await probe.start()
    try:
        offset = await probe.committed(TopicPartition(topic.name, 0))
        return None if offset is None else int(offset)
    finally:
        await probe.stop()


async def test_transient_failures_are_retried_and_committed_once(prepared: Infra) -> None:
    topic = fresh_topic()
    await ensure_topics(prepared.bootstrap, [topic])
    calls: list[int] = []
    handled: list[str] = []

    async def flaky(envelopes: list[Any]) -> None:
        calls.append(len(envelopes))
        if len(calls) <= 2:
            raise OSError("database down")
        handled.extend(str(e.data.platform_id) for e in envelopes)

    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer, producer, task = await run_consumer(prepared, topic, flaky, group)
    try:
        await eventually(lambda: len(handled) == 5, timeout=60)
        await eventually(lambda: consumer.is_running())
    finally:
        await consumer.stop()
        await task
        await producer.stop()
    assert sorted(handled) == ["0", "1", "2", "3", "4"]
    assert calls[:2] == [5, 5]  # the whole batch was retried, nothing skipped
    assert await committed(prepared, topic, group) == 5


async def test_an_event_that_always_fails_is_isolated_and_dead_lettered(prepared: Infra) -> None:
    topic = fresh_topic()
    await ensure_topics(prepared.bootstrap, [topic])
    handled: list[str] = []

    async def picky(envelopes: list[Any]) -> None:
        if any(e.data.platform_id == "3" for e in envelopes):
            raise ValueError("this one can never be processed")
        handled.extend(str(e.data.platform_id) for e in envelopes)

    group = f"g-{uuid.uuid4().hex[:6]}"
    consumer, producer, task = await run_consumer(prepared, topic, picky, group)
    try:
        await eventually(lambda: len(handled) == 4, timeout=60)
    finally:
        await consumer.stop()
        await task
        await producer.stop()
    assert sorted(handled) == ["0", "1", "2", "4"]
    dead = await read_topic(prepared.bootstrap, topic.dead_letter)
    assert len(dead) == 1
    assert b"can never be processed" in dict(dead[0].headers)["scs-dlq-error"]
    assert await committed(prepared, topic, group) == 5
