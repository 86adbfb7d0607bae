"""Ingest dies between the broker's ack and marking the mention published: the claim expires,
the sender's retry publishes it again, and downstream it is still exactly one case mention."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.events import Channel, Mention
from shared.failpoints import CRASH_EXIT_STATUS
from tests.integration.conftest import INGEST_AUTH, TENANT, Stack, eventually
from tests.integration.test_ingest_webhooks import mention_ids_on_topic

CLAIM_TIMEOUT_SECONDS = "2"
PUBLISH_TIMEOUT_SECONDS = "1"  # a claim must outlive the wait for the broker


def a_mention(platform_id: str, conversation: str) -> dict[str, Any]:
    return {
        "id": platform_id,
        "channel": "x",
        "kind": "mention",
        "text": "@AuroraTelecom llevo tres días sin fibra y nadie responde",
        "author": {"handle": "crash_test"},
        "created_at": "2026-03-02T09:00:00+01:00",
        "conversation_id": conversation,
    }


async def case_mentions(stack: Stack, mention_id: uuid.UUID) -> int:
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM router_case_mentions WHERE mention_id = :id"),
                {"id": mention_id},
            )
    finally:
        await engine.dispose()
    return int(count or 0)


@pytest.mark.disruptive
async def test_crash_between_publish_and_mark_loses_nothing_and_doubles_nothing(
    stack: Stack,
) -> None:
    ingest = stack.services["ingest"]
    run = uuid.uuid4().hex[:8]
    conversation = f"crash-{run}"
    crashed = a_mention(f"crash-{run}", conversation)
    crashed_id = Mention.id_for(Channel.X, crashed["id"], TENANT)
    ingest.terminate()
    ingest.start(SCS_FAILPOINTS="ingest.after_publish")
    try:
        await ingest.wait_ready()
        async with httpx.AsyncClient(
            base_url=stack.url("ingest"), headers=INGEST_AUTH, timeout=30
        ) as client:
            with pytest.raises(httpx.TransportError):  # the process died mid-request
                await client.post("/v1/mentions", json=crashed)
        assert ingest.process is not None
        assert await asyncio.to_thread(ingest.process.wait, 10) == CRASH_EXIT_STATUS
        # acked by the broker before the crash, but never marked published
        assert str(crashed_id) in await mention_ids_on_topic(stack)

        ingest.start(
            SCS_INGEST_CLAIM_TIMEOUT_SECONDS=CLAIM_TIMEOUT_SECONDS,
            SCS_INGEST_PUBLISH_TIMEOUT_SECONDS=PUBLISH_TIMEOUT_SECONDS,
        )
        await ingest.wait_ready()
        statuses: list[int] = []
        async with httpx.AsyncClient(
            base_url=stack.url("ingest"), headers=INGEST_AUTH, timeout=30
        ) as client:

            async def sender_retries() -> bool:
                response = await client.post("/v1/mentions", json=crashed)
                statuses.append(response.status_code)
                return response.status_code != 503  # claim still held: retry later

            await eventually(sender_retries, timeout=30, interval=0.5)
            # the claim expired and the retry republished it: a new accept, not a "duplicate"
            assert statuses[-1] == 202, statuses
            assert set(statuses[:-1]) <= {503}
            again = await client.post("/v1/mentions", json=crashed)
            assert again.status_code == 200  # now it is marked published
            # Same conversation, same partitions all the way: once its sentinel is a case
            # mention, both copies of the crashed mention have been through the router.
            sentinel = a_mention(f"sentinel-{run}", conversation)
            assert (await client.post("/v1/mentions", json=sentinel)).status_code == 202
    finally:
        if ingest.process is not None and ingest.process.poll() is None:
            ingest.terminate()
        ingest.start()  # back to the stack's normal settings for the other tests
        await ingest.wait_ready()

    on_topic = await mention_ids_on_topic(stack)
    assert on_topic.count(str(crashed_id)) == 2  # a duplicate on the topic is allowed...
    sentinel_id = Mention.id_for(Channel.X, sentinel["id"], TENANT)

    async def sentinel_routed() -> bool:
        return await case_mentions(stack, sentinel_id) == 1

    await eventually(sentinel_routed, timeout=60)
    assert await case_mentions(stack, crashed_id) == 1  # ...one case mention downstream
