"""Outages while 500 mentions flow, as a platform sends them (503s retried): PostgreSQL's
connections killed by an admin shutdown and then the server restarted; separately, the broker
restarted. Every accepted mention becomes exactly one case and one webhook, and no message goes
to a dead-letter topic. These tests stop shared parts, so they run last (disruptive)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.topics import ALL_TOPICS
from tests.integration.conftest import INGEST_AUTH, REPO, Receiver, Stack, eventually
from tests.integration.test_pipeline import for_conversation, mention_body

pytestmark = pytest.mark.disruptive

MENTIONS = 500
PER_SECOND = 25  # the flow lasts 20 s, so each outage lands in the middle of it
SENDERS = 32
COMPLAINT = "@AuroraTelecom llevo dos días sin línea y nadie me contesta, quiero una solución"


async def local(script: str, action: str) -> None:
    """deploy/local/<script>.sh start|stop on the test stack (its env comes from stack.sh test)."""
    process = await asyncio.create_subprocess_exec(
        str(REPO / "deploy" / "local" / f"{script}.sh"),
        action,
        env=os.environ.copy(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


async def send_like_a_platform(
    client: httpx.AsyncClient, url: str, body: object, refusals: list[int]
) -> bool:
    """POST until 202/200; a 503 or a refused connection is retried, as platforms do."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            response = await client.post(url, json=body, timeout=15)
        except httpx.TransportError:
            refusals.append(0)
            await asyncio.sleep(0.5)
            continue
        if response.status_code in (200, 202):
            return True
        refusals.append(response.status_code)
        assert response.status_code == 503, response.text
        await asyncio.sleep(min(2.0, float(response.headers.get("retry-after", "1"))))
    return False


async def flow_through(
    stack: Stack, disruption: Callable[[], Coroutine[Any, Any, None]]
) -> list[str]:
    """Send MENTIONS new conversations at PER_SECOND while `disruption` runs; the accepted ones."""
    tag = uuid.uuid4().hex[:8]
    conversations = [f"outage-{tag}-{n}" for n in range(MENTIONS)]
    senders = asyncio.Semaphore(SENDERS)
    refusals: list[int] = []
    url = f"{stack.url('ingest')}/v1/mentions"

    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:

        async def send(conversation: str) -> bool:
            async with senders:
                return await send_like_a_platform(
                    client, url, mention_body(conversation, COMPLAINT), refusals
                )

        outage = asyncio.create_task(disruption())
        sends = []
        for conversation in conversations:
            sends.append(asyncio.create_task(send(conversation)))
            await asyncio.sleep(1 / PER_SECOND)
        accepted = await asyncio.gather(*sends)
        assert outage.done(), "the flow ended before the outage did"
        await outage
    assert refusals, "the outage never reached the senders"
    return [c for c, ok in zip(conversations, accepted, strict=True) if ok]


async def dead_letter_count(bootstrap: str) -> int:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await probe.start()
    try:
        ends = await probe.end_offsets([TopicPartition(t.dead_letter, 0) for t in ALL_TOPICS])
        return sum(ends.values())
    finally:
        await probe.stop()


async def survives(
    stack: Stack, receiver: Receiver, disruption: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Mentions flow through `disruption`; each accepted one becomes one case and one webhook."""
    dead_letters_before = await dead_letter_count(stack.infra.bootstrap)
    accepted = await flow_through(stack, disruption)
    assert len(accepted) == MENTIONS, "a sender gave up: ingest never came back"
    await assert_each_became_one_case_and_one_webhook(
        stack, receiver, accepted, dead_letters_before
    )


async def assert_each_became_one_case_and_one_webhook(
    stack: Stack, receiver: Receiver, accepted: list[str], dead_letters_before: int
) -> None:
    def webhooks(conversation: str) -> list[dict[str, Any]]:
        return receiver.matching(for_conversation(conversation, "case.created"))

    await eventually(lambda: all(webhooks(c) for c in accepted), timeout=120, interval=1)
    for conversation in accepted:
        # A redelivery after a lost acknowledgement carries the same webhook-id: one webhook.
        ids = {str(event["headers"]["webhook-id"]) for event in webhooks(conversation)}
        assert len(ids) == 1, (conversation, ids)
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.connect() as conn:
            cases = await conn.execute(
                text(
                    "SELECT conversation_key, count(*) FROM router_cases "
                    "WHERE conversation_key = ANY(:keys) GROUP BY conversation_key"
                ),
                {"keys": [f"x:{c}" for c in accepted]},
            )
            per_conversation: dict[str, int] = {key: count for key, count in cases}
    finally:
        await engine.dispose()
    assert len(per_conversation) == len(accepted)
    assert set(per_conversation.values()) == {1}
    assert await dead_letter_count(stack.infra.bootstrap) == dead_letters_before
    for service in stack.services.values():
        await service.wait_ready()


async def test_postgresql_admin_shutdowns_and_a_restart_lose_and_double_nothing(
    stack: Stack, receiver: Receiver
) -> None:
    async def disruption() -> None:
        engine = create_async_engine(stack.infra.database_url)
        try:
            for _ in range(3):  # errors on open connections: SQLSTATE 57P01
                await asyncio.sleep(2)
                async with engine.connect() as conn:
                    await conn.execute(
                        text(
                            # The services' connections; not autovacuum's workers (superuser
                            # processes this role may not end), which busier tables now wake.
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND backend_type = 'client backend' AND usename = current_user"
                        )
                    )
        finally:
            await engine.dispose()
        await asyncio.sleep(2)
        await local("postgres", "stop")
        await asyncio.sleep(5)
        await local("postgres", "start")

    await survives(stack, receiver, disruption)


async def test_a_broker_restart_loses_and_doubles_nothing(stack: Stack, receiver: Receiver) -> None:
    async def disruption() -> None:
        await asyncio.sleep(6)
        await local("kafka", "stop")
        # Longer than ingest's publish timeout (10 s): the senders must see the outage (503s),
        # not only a slow broker (with 3 s the restart hid inside the timeout on a busy run).
        await asyncio.sleep(12)
        await local("kafka", "start")

    await survives(stack, receiver, disruption)
