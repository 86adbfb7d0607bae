"""Two EventConsumers in one group on the real broker: the partitions are split between them,
and members joining and leaving mid-stream (two rebalances) lose no event."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events import Envelope, EventType, TraceContext, new_envelope
from shared.kafka import EventConsumer, EventProducer, ensure_topics
from shared.topics import Topic
from tests.integration.conftest import Infra, eventually
from tests.unit.test_events import a_mention

EVENTS = 600


async def test_two_members_split_the_partitions_and_a_rebalance_mid_stream_loses_nothing(
    prepared: Infra,
) -> None:
    topic = Topic(f"test.group-{uuid.uuid4().hex[:8]}.v1", frozenset({EventType.MENTION_RECEIVED}))
    await ensure_topics(prepared.bootstrap, [topic])
    producer = EventProducer(prepared.bootstrap, "test")
    await producer.start()
    sent = [
        new_envelope(
            EventType.MENTION_RECEIVED,
            a_mention(conversation_id=f"conv-{n % 60}"),
            tenant="t",
            subject=f"x:conv-{n % 60}",  # 60 conversations over the 6 partitions
            trace=TraceContext.new(),
        )
        for n in range(EVENTS)
    ]
    await producer.publish_many(topic, sent)
    group = f"g-{uuid.uuid4().hex[:6]}"
    handled: dict[str, Counter[uuid.UUID]] = {"a": Counter(), "b": Counter()}

    def member(name: str) -> EventConsumer:
        async def handle(envelopes: list[Envelope[Any]]) -> None:
            await asyncio.sleep(0.25)  # 15 s for one member: the rebalances land mid-stream
            handled[name].update(e.id for e in envelopes)

        return EventConsumer(
            topic=topic,
            group_id=group,
            bootstrap_servers=prepared.bootstrap,
            handler=handle,
            producer=producer,
            max_batch_records=10,
        )

    def total() -> int:
        return len(set(handled["a"]) | set(handled["b"]))

    first, second = member("a"), member("b")
    await first.start()
    tasks = [asyncio.create_task(first.run())]
    try:
        await eventually(lambda: total() >= 60, timeout=60)
        await second.start()  # joins: the group rebalances while `a` is mid-stream
        tasks.append(asyncio.create_task(second.run()))
        await eventually(lambda: len(second._consumer.assignment()) > 0, timeout=60)
        assignments = (set(first._consumer.assignment()), set(second._consumer.assignment()))
        await eventually(lambda: len(handled["b"]) >= 30, timeout=60)
        assert total() < EVENTS, "the stream ended before the second rebalance"
        await first.stop()  # leaves mid-stream: `b` takes over its partitions
        await eventually(lambda: total() == EVENTS, timeout=90)
    finally:
        for consumer in (first, second):
            await consumer.stop()
        await asyncio.gather(*tasks)
        await producer.stop()

    first_share, second_share = assignments
    assert first_share and second_share and not first_share & second_share
    assert len(first_share | second_share) == topic.partitions
    assert set(handled["a"]) | set(handled["b"]) == {e.id for e in sent}
    assert handled["a"] and handled["b"]
    assert await committed_total(prepared, topic, group) == EVENTS


async def committed_total(infra: Infra, topic: Topic, group: str) -> int:
    probe = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, group_id=group)
    await probe.start()
    try:
        offsets = [
            await probe.committed(TopicPartition(topic.name, p)) for p in range(topic.partitions)
        ]
        return sum(offset or 0 for offset in offsets)
    finally:
        await probe.stop()
