"""Poison messages go to the dead-letter topic with the error, and the consumers keep going."""

from __future__ import annotations

import uuid

import httpx
from aiokafka import AIOKafkaProducer

from shared.topics import ALL_TOPICS
from tests.integration.conftest import INGEST_AUTH, Receiver, Stack, eventually, read_topic
from tests.integration.test_pipeline import for_conversation, mention_body

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
        for topic in ALL_TOPICS:
            event_type = sorted(topic.event_types)[0].value.encode()
            keys[topic.name] = []
            for name, value in POISON.items():
                key = f"poison-{name}-{uuid.uuid4().hex}".encode()
                keys[topic.name].append(key)
                payload = value % event_type if b"%s" in value else value
                await producer.send_and_wait(topic.name, value=payload, key=key)
    finally:
        await producer.stop()

    for topic in ALL_TOPICS:

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
