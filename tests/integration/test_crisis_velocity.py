"""Crisis velocity is shared state: a burst spread over conversations (so over partitions) and
over a classifier restart still raises the crisis risk of the next mention on that topic; a
redone batch counts each mention once, in PostgreSQL and in the metrics."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.classifier.core import Classifier
from services.classifier.handlers import MentionClassifier
from shared.db import Database
from shared.events import (
    Author,
    Channel,
    Envelope,
    EventType,
    Mention,
    MentionKind,
    Priority,
    TraceContext,
    decode_event,
    new_envelope,
    stable_id,
)
from shared.kafka import EventProducer
from shared.topics import CLASSIFICATIONS
from tests.integration.conftest import INGEST_AUTH, Receiver, Stack, eventually, read_topic
from tests.integration.test_pipeline import mention_body

LEAK = (
    "@AuroraTelecom ¿habéis sufrido una filtración de datos? "
    "me llegan correos con mis datos personales"
)


def created(receiver: Receiver, conversation: str) -> dict[str, Any] | None:
    for event in receiver.events:
        if (
            event["type"] == "case.created"
            and event["data"]["case"]["conversation_key"] == f"x:{conversation}"
        ):
            return event["data"]  # type: ignore[no-any-return]
    return None


async def post_and_wait(stack: Stack, receiver: Receiver, conversation: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(
            f"{stack.url('ingest')}/v1/mentions", json=mention_body(conversation, LEAK)
        )
    assert response.status_code == 202, response.text
    await eventually(
        lambda: created(receiver, conversation) is not None,
        what=f"case.created webhook for {conversation}",
    )
    data = created(receiver, conversation)
    assert data is not None
    return data


async def test_velocity_counts_across_conversations_and_survives_a_restart(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    first = await post_and_wait(stack, receiver, f"leak-{run}-0")
    for n in range(1, 6):
        await post_and_wait(stack, receiver, f"leak-{run}-{n}")
    stack.services["classifier"].kill()
    stack.services["classifier"].start()
    await stack.services["classifier"].wait_ready()
    after_restart = await post_and_wait(stack, receiver, f"leak-{run}-6")

    before = first["classification"]
    after = after_restart["classification"]
    assert after["crisis_risk"] > before["crisis_risk"], (before, after)
    assert any("similar negative" in reason for reason in after["reasons"]), after["reasons"]
    assert not any("similar negative" in reason for reason in before["reasons"]), before


def leak_envelope(run: str, n: int, seconds: float) -> Envelope[Mention]:
    mention = Mention(
        mention_id=Mention.id_for(Channel.X, f"velocity-{run}-{n}"),
        channel=Channel.X,
        kind=MentionKind.MENTION,
        platform_id=f"velocity-{run}-{n}",
        conversation_id=f"velocity-{run}-{n}",
        text=LEAK,
        author=Author(handle="cliente"),
        created_at=datetime.now(UTC) + timedelta(seconds=seconds),
        brand=f"Brand {run}",
    )
    return new_envelope(
        EventType.MENTION_RECEIVED,
        mention,
        tenant=f"velocity-{run}",
        subject=mention.conversation_key,
        trace=TraceContext.new(),
    )


def classified_total() -> float:
    return sum(
        REGISTRY.get_sample_value("scs_classifier_priority_total", {"priority": p.value}) or 0.0
        for p in Priority
    )


async def test_a_redone_batch_counts_velocity_and_metrics_once(stack: Stack) -> None:
    """The batch fails at its publish (broker not connected) after velocity was stored, then
    is redone: each mention is counted once, in PostgreSQL and in the metrics; a second
    replica sees the same counts."""
    run = uuid.uuid4().hex[:8]
    database = Database(stack.infra.database_url)
    producer = EventProducer(stack.infra.bootstrap, f"test-velocity-{run}")
    replicas = [
        MentionClassifier(database, producer, Classifier.default(), timedelta(seconds=600))
        for _ in range(2)
    ]
    batch = [leak_envelope(run, n, seconds=n) for n in range(3)]
    probe = leak_envelope(run, 3, seconds=10)

    async def negatives_stored() -> int:
        async with database.begin() as conn:
            total = await conn.execute(
                text(
                    "SELECT coalesce(sum(negatives), 0) FROM classifier_velocity_buckets "
                    "WHERE tenant = :tenant"
                ),
                {"tenant": f"velocity-{run}"},
            )
            return int(total.scalar_one())

    try:
        before = classified_total()
        with pytest.raises(KafkaConnectionError):
            await replicas[0].handle(batch)
        assert await negatives_stored() == 3
        assert classified_total() == before, "counted before the batch was published"
        await producer.start()
        await replicas[0].handle(batch)  # the redelivery
        assert await negatives_stored() == 3
        assert classified_total() == before + 3
        await replicas[1].handle([probe])
        assert await negatives_stored() == 4
    finally:
        await producer.stop()
        await database.dispose()

    wanted = stable_id(EventType.MENTION_CLASSIFIED.value, str(probe.id))
    async with asyncio.timeout(30):
        records = await read_topic(stack.infra.bootstrap, CLASSIFICATIONS.name)
    [published] = [r for r in records if decode_event(r.value).id == wanted]
    reasons = decode_event(published.value).data.classification.reasons
    assert "3 similar negative mentions in 10 min" in reasons, reasons
