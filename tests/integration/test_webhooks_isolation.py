"""One bad receiver must not hurt the others: a receiver that hangs holds a few slots of its own
and nobody else's, a receiver that answers with a huge body is not read whole, and a disabled
endpoint gets nothing new and has nothing attempted until it is enabled again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from tests.integration.conftest import ADMIN_AUTH, Stack, eventually
from tests.integration.test_webhook_retries import (
    delivery_rows,
    post_mention,
    query,
    register,
    serving,
)

MEGABYTE = 1_048_576


class Recorder:
    """Answers 204 at once and keeps the conversation key of each delivery, with its time."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.json()
        self.received[body["data"]["case"]["conversation_key"]] = time.monotonic()
        return Response(status_code=204)


class Hanging:
    """Never answers (until released); tracks how many requests it holds at once."""

    def __init__(self) -> None:
        self.holding = 0
        self.most_held = 0
        self.release = asyncio.Event()
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self, request: Request) -> Response:
        self.holding += 1
        self.most_held = max(self.most_held, self.holding)
        try:
            await self.release.wait()
        finally:
            self.holding -= 1
        return Response(status_code=204)


class Huge:
    """Answers 200 with a 256 MiB body, produced only as fast as it is read."""

    def __init__(self) -> None:
        self.megabytes_sent = 0
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self, request: Request) -> StreamingResponse:
        def body() -> Iterator[bytes]:
            for _ in range(256):
                self.megabytes_sent += 1
                yield b"x" * MEGABYTE

        return StreamingResponse(body(), media_type="text/plain")


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    receiver = Recorder()
    async with serving(receiver.app) as url:
        yield receiver, url


async def set_enabled(stack: Stack, endpoint_id: str, enabled: bool) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.patch(
            f"{stack.url('router')}/v1/webhook-endpoints/{endpoint_id}",
            headers=ADMIN_AUTH,
            json={"enabled": enabled},
        )


async def test_a_hanging_receiver_does_not_delay_a_healthy_one(
    stack: Stack, recorder: tuple[Recorder, str]
) -> None:
    healthy, healthy_url = recorder
    hanging = Hanging()
    async with serving(hanging.app) as hanging_url:
        hanging_endpoint = await register(stack, hanging_url)
        await register(stack, healthy_url)
        try:
            await post_mention(stack, f"hang-first-{uuid.uuid4().hex}")
            await eventually(lambda: hanging.holding >= 1, timeout=30)
            # The hanging attempt now holds a slot for up to the 10 s attempt deadline. Cases
            # posted after it must reach the healthy receiver without waiting for it.
            conversations = [f"x:hang-next-{uuid.uuid4().hex}" for _ in range(6)]
            posted_at = time.monotonic()
            for conversation in conversations:
                await post_mention(stack, conversation.removeprefix("x:"))
            await eventually(lambda: all(c in healthy.received for c in conversations), timeout=30)
            slowest = max(healthy.received[c] for c in conversations) - posted_at
            assert slowest < 5.0, f"healthy deliveries waited {slowest:.1f} s"
            assert hanging.holding >= 1, "the hanging attempts should still be pending"
            assert hanging.most_held <= 4  # SCS_ROUTER_WEBHOOK_ENDPOINT_CONCURRENCY default
        finally:
            assert (await set_enabled(stack, hanging_endpoint["id"], False)).status_code == 200
            hanging.release.set()


async def test_a_huge_response_body_is_not_read_whole(stack: Stack) -> None:
    huge = Huge()
    async with serving(huge.app) as url:
        endpoint = await register(stack, url)
        await post_mention(stack, f"huge-{uuid.uuid4().hex}")

        async def delivered() -> bool:
            return any(row.status == "delivered" for row in await delivery_rows(stack, url))

        await eventually(delivered, timeout=30)
        await set_enabled(stack, endpoint["id"], False)
    # Socket buffers take a few MiB before the router stops reading; reading it whole is 256.
    assert huge.megabytes_sent < 32, f"{huge.megabytes_sent} MiB were produced"


async def test_a_disabled_endpoint_gets_nothing_until_enabled_again(
    stack: Stack, recorder: tuple[Recorder, str]
) -> None:
    disabled, disabled_url = recorder
    witness = Recorder()
    async with serving(witness.app) as witness_url:
        endpoint = await register(stack, disabled_url)
        await register(stack, witness_url)
        response = await set_enabled(stack, endpoint["id"], False)
        assert response.status_code == 200 and response.json()["enabled"] is False

        # No new delivery is enqueued for it...
        conversation = f"disabled-{uuid.uuid4().hex}"
        await post_mention(stack, conversation)
        await eventually(lambda: f"x:{conversation}" in witness.received, timeout=30)
        assert await delivery_rows(stack, disabled_url) == []

        # ...and a pending one (enqueued before it was disabled) is not attempted.
        backlog = f"x:backlog-{uuid.uuid4().hex}"
        body = b'{"type": "case.created", "data": {"case": {"conversation_key": "%s"}}}' % (
            backlog.encode()
        )
        await query(
            stack,
            "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, event_id, event_type, "
            "body, status, next_attempt_at) VALUES (:d, :e, :v, 'case.created', :b, 'pending', "
            "now())",
            d=uuid.uuid4(),
            e=uuid.UUID(endpoint["id"]),
            v=uuid.uuid4(),
            b=body,
        )
        # A delivery enqueued after the backlog reaching the witness proves the dispatcher has
        # leased since: the backlog was due all along and must still be untouched.
        later = f"after-backlog-{uuid.uuid4().hex}"
        await post_mention(stack, later)
        await eventually(lambda: f"x:{later}" in witness.received, timeout=30, what="witness")
        [row] = await delivery_rows(stack, disabled_url)
        assert (row.status, row.attempts, disabled.received) == ("pending", 0, {})

        assert (await set_enabled(stack, endpoint["id"], True)).status_code == 200
        await eventually(lambda: backlog in disabled.received, timeout=30)
        await set_enabled(stack, endpoint["id"], False)


async def test_enabling_an_unknown_endpoint_is_a_404_problem(stack: Stack) -> None:
    response = await set_enabled(stack, str(uuid.uuid4()), True)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
