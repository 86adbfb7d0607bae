"""Poison messages go to the dead-letter topic with the error, and the consumers keep going;
`scs dlq list|replay` shows them without their text and puts them back after a fix."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.events import Envelope, EventType, TraceContext, new_envelope
from shared.kafka import EventConsumer, EventProducer, PoisonEvent, ensure_topics
from shared.topics import CASES, CLASSIFICATIONS, MENTIONS, Topic
from tests.integration.conftest import (
    INGEST_AUTH,
    SCS,
    Infra,
    Receiver,
    Stack,
    eventually,
    read_topic,
)
from tests.integration.test_consumer import mentions
from tests.integration.test_pipeline import for_conversation, mention_body

# The topics a service consumes (crisis events are for webhooks and outside consumers).
CONSUMED = (MENTIONS, CLASSIFICATIONS, CASES)
POISON = {
    "not json": b"\x00\xffthis is not json",
    "unknown type": b'{"id": "x", "type": "mention.exploded", "version": 1}',
    "bad payload": (
        b'{"id": "6f1c2b8e-5a0d-4c8e-9a57-3e0f3c1d2b77", "type": "%s", "version": 1, '
        b'"occurred_at": "2026-01-01T00:00:00Z", "tenant": "default", "subject": "x:1", '
        b'"trace": {"traceparent": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"}, '
        b'"data": {"text": 42}}'
    ),
}


async def _responded(stack: Stack) -> int:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        sla = (await client.get(f"{stack.url('kpi')}/v1/kpis/sla")).json()
    return int(sla["overall"]["responded"])


async def test_malformed_messages_are_dead_lettered_and_consumers_continue(
    stack: Stack, receiver: Receiver
) -> None:
    responded_before = await _responded(stack)
    producer = AIOKafkaProducer(bootstrap_servers=stack.infra.bootstrap)
    await producer.start()
    keys: dict[str, list[bytes]] = {}
    try:
        for topic in CONSUMED:
            event_type = sorted(topic.event_types)[0].value.encode()
            keys[topic.name] = []
            for name, value in POISON.items():
                key = f"poison-{name}-{uuid.uuid4().hex}".encode()
                keys[topic.name].append(key)
                payload = value % event_type if b"%s" in value else value
                await producer.send_and_wait(topic.name, value=payload, key=key)
    finally:
        await producer.stop()

    for topic in CONSUMED:

        async def dead_lettered(topic_name: str = topic.name, dlq: str = topic.dead_letter) -> bool:
            records = await read_topic(stack.infra.bootstrap, dlq)
            found = {r.key for r in records if r.key in keys[topic_name]}
            return found == set(keys[topic_name])

        await eventually(dead_lettered, timeout=60, interval=1)
        records = [
            r
            for r in await read_topic(stack.infra.bootstrap, topic.dead_letter)
            if r.key in keys[topic.name]
        ]
        for record in records:
            headers = dict(record.headers)
            assert headers["scs-dlq-error"], "the error travels with the message"
            assert headers["scs-dlq-source"].decode().startswith(f"{topic.name}/")

    # Every consumer is still alive: a new conversation goes all the way to the KPI service.
    conversation = f"after-poison-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        for body in (
            mention_body(conversation, "@AuroraTelecom no funciona la app desde ayer"),
            mention_body(
                conversation,
                "Lo miramos ahora mismo, ¿nos escribes por DM?",
                kind="reply",
                handle="AuroraTelecom",
            ),
        ):
            assert (
                await client.post(f"{stack.url('ingest')}/v1/mentions", json=body)
            ).status_code == 202
    await eventually(
        lambda: bool(receiver.matching(for_conversation(conversation, "case.responded")))
    )

    async def kpi_moved() -> bool:
        return await _responded(stack) > responded_before

    await eventually(kpi_moved)


async def scs(bootstrap: str, *args: str) -> str:
    """Run the `scs` command against the test broker; its stdout, or fail with its stderr."""
    process = await asyncio.create_subprocess_exec(
        str(SCS),
        *args,
        env={**os.environ, "SCS_KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


async def test_dead_letters_are_listed_without_text_and_replayed_once_after_the_fix(
    prepared: Infra,
) -> None:
    topic = Topic(
        f"test.dlq-{uuid.uuid4().hex[:8]}.v1",
        frozenset({EventType.MENTION_RECEIVED}),
        partitions=1,
    )
    await ensure_topics(prepared.bootstrap, [topic])
    envelopes = [
        new_envelope(
            EventType.MENTION_RECEIVED,
            mention,
            tenant="t",
            subject=mention.conversation_key,
            trace=TraceContext.new(),
        )
        for mention in mentions(5)
    ]
    producer = EventProducer(prepared.bootstrap, "test")
    await producer.start()
    await producer.publish_many(topic, envelopes)
    fixed = False
    handled: list[str] = []

    async def handler(batch: list[Envelope[Any]]) -> None:
        for envelope in batch:
            if envelope.data.platform_id == "3" and not fixed:
                raise PoisonEvent(envelope, "no case for this reply")
        handled.extend(str(e.data.platform_id) for e in batch)

    consumer = EventConsumer(
        topic=topic,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        bootstrap_servers=prepared.bootstrap,
        handler=handler,
        producer=producer,
    )
    await consumer.start()
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: len(handled) == 4)
        listing = await scs(prepared.bootstrap, "dlq", "list", topic.name)
        assert listing.splitlines() == [
            f"0/0\tpending\t{topic.name}/0/3\tmention.received\t{envelopes[3].id}"
            "\tno case for this reply"
        ]

        dry_run = await scs(prepared.bootstrap, "dlq", "replay", topic.name, "--dry-run")
        assert dry_run.startswith(f"would replay 1 dead letters to {topic.name}")
        assert len(await read_topic(prepared.bootstrap, topic.name)) == 5  # nothing sent

        fixed = True  # the fix is deployed
        replay = await scs(prepared.bootstrap, "dlq", "replay", f"{topic.name}.dlq")
        assert replay.startswith(f"replayed 1 dead letters to {topic.name}")
        await eventually(lambda: sorted(handled) == ["0", "1", "2", "3", "4"])

        again = await scs(prepared.bootstrap, "dlq", "replay", topic.name)
        assert again.startswith("replayed 0 dead letters"), "a replay is not repeated"
        assert "\treplayed\t" in await scs(prepared.bootstrap, "dlq", "list", topic.name)
    finally:
        await consumer.stop()
        await task
        await producer.stop()

    records = await read_topic(prepared.bootstrap, topic.name)
    assert len(records) == 6
    original, replayed = records[3], records[5]
    assert (replayed.key, replayed.value) == (original.key, original.value)
    assert list(replayed.headers) == list(original.headers)  # no scs-dlq-* headers left
