"""A receiver that fails gets the same delivery again (same webhook-id) until it succeeds; one
that keeps failing has the delivery marked failed after the last retry, never silently lost."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.conftest import ADMIN_KEY, INGEST_AUTH, Stack, eventually
from tests.integration.test_pipeline import mention_body


class FlakyReceiver:
    """Fails the first `failures` attempts of every delivery; `failures=-1` fails forever."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: Counter[str] = Counter()
        self.delivered: dict[str, dict[str, Any]] = {}
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self, request: Request) -> Response:
        delivery_id = request.headers["webhook-id"]
        self.attempts[delivery_id] += 1
        if self.failures < 0 or self.attempts[delivery_id] <= self.failures:
            return Response(status_code=503)
        self.delivered[delivery_id] = await request.json()
        return Response(status_code=204)


async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run a stand-in receiver on a free local port; yields its /hooks URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=10, interval=0.05, what="the receiver started")
    yield f"http://127.0.0.1:{port}/hooks"
    server.should_exit = True
    server.force_exit = True  # do not wait for requests a test left hanging
    await task


serving = contextlib.asynccontextmanager(serve)


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[FlakyReceiver, str]]:
    receiver = FlakyReceiver(failures=2)
    async for url in serve(receiver.app):
        yield receiver, url


@pytest.fixture
async def broken() -> AsyncIterator[tuple[FlakyReceiver, str]]:
    receiver = FlakyReceiver(failures=-1)
    async for url in serve(receiver.app):
        yield receiver, url


async def register(stack: Stack, url: str) -> dict[str, Any]:
    """Register `url` for case.created; returns the created endpoint (id, secret...)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{stack.url('router')}/v1/webhook-endpoints",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={"url": url, "events": ["case.created"]},
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def post_mention(stack: Stack, conversation: str) -> None:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(
            f"{stack.url('ingest')}/v1/mentions",
            json=mention_body(conversation, "@AuroraTelecom sin línea"),
        )
    assert response.status_code == 202


async def query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    """Rows of one SQL statement on the stack's database (committed)."""
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def delivery_rows(stack: Stack, url: str) -> list[Any]:
    return await query(
        stack,
        "SELECT d.delivery_id, d.status, d.attempts, d.last_status_code, d.last_error "
        "FROM webhook_deliveries d JOIN webhook_endpoints e USING (endpoint_id) "
        "WHERE e.url = :url",
        url=url,
    )


async def test_failed_delivery_is_retried_with_the_same_webhook_id(
    stack: Stack, flaky: tuple[FlakyReceiver, str]
) -> None:
    receiver, url = flaky
    await register(stack, url)
    conversation = f"retry-{uuid.uuid4().hex}"
    await post_mention(stack, conversation)
    await eventually(
        lambda: any(
            body["data"]["case"]["conversation_key"] == f"x:{conversation}"
            for body in receiver.delivered.values()
        )
    )
    [delivery_id] = [
        d
        for d, body in receiver.delivered.items()
        if body["data"]["case"]["conversation_key"] == f"x:{conversation}"
    ]
    assert receiver.attempts[delivery_id] == 3
    rows = [r for r in await delivery_rows(stack, url) if r.status == "delivered"]
    assert rows and all(r.attempts == 3 for r in rows)


async def test_delivery_to_a_dead_endpoint_ends_failed_after_the_last_retry(
    stack: Stack, broken: tuple[FlakyReceiver, str]
) -> None:
    receiver, url = broken
    await register(stack, url)
    await post_mention(stack, f"dead-{uuid.uuid4().hex}")

    async def marked_failed() -> bool:
        rows = await delivery_rows(stack, url)
        return bool(rows) and all(r.status == "failed" for r in rows)

    await eventually(marked_failed, timeout=60)
    rows = await delivery_rows(stack, url)
    assert all(r.attempts == 4 and r.last_status_code == 503 for r in rows)
    assert all(count == 4 for count in receiver.attempts.values())
