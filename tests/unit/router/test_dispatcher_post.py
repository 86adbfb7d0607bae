"""One POST of the webhook dispatcher against raw local sockets: the attempt has one total
deadline (a receiver dripping a byte at a time cannot hold it past it, though no single read
waits long), and a redirect is reported, never followed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import cast

from cryptography.fernet import Fernet, MultiFernet

from services.router.repository import LeasedDelivery
from services.router.webhooks import WebhookDispatcher
from shared.db import Database

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]
KEY = Fernet.generate_key()


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[tuple[str, list[int]]]:
    """A local HTTP/1.1 server that reads the request head and lets `answer` write the reply."""
    hits: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        hits.append(1)
        try:
            await answer(writer)
        except ConnectionError:
            pass  # the client gave up first: that is the point of the deadline test
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hooks", hits


def dispatcher(timeout_seconds: float) -> WebhookDispatcher:
    return WebhookDispatcher(
        cast(Database, None),  # _post touches no database
        timeout_seconds=timeout_seconds,
        lease_seconds=60,
        concurrency=2,
        endpoint_concurrency=1,
        retry_delays=[],
        allowed_networks=[ip_network("127.0.0.0/8")],
        secrets_cipher=MultiFernet([Fernet(KEY)]),
        due=asyncio.Event(),
    )


def delivery(url: str) -> LeasedDelivery:
    return LeasedDelivery(
        delivery_id=uuid.uuid4(),
        endpoint_id=uuid.uuid4(),
        url=url,
        secret_ciphertext=Fernet(KEY).encrypt(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").decode(),
        previous_secret_ciphertext=None,
        previous_secret_until=None,
        body=b'{"type":"case.created"}',
        attempts=0,
        lease_token=uuid.uuid4(),
        created_at=datetime.now(UTC),
    )


async def drip(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(100):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.3)


async def test_a_dripping_receiver_is_cut_at_the_total_deadline() -> None:
    posting = dispatcher(timeout_seconds=1)
    async with raw_server(drip) as (url, _):
        started = time.perf_counter()
        status, error, _excerpt = await posting._post(delivery(url))
        elapsed = time.perf_counter() - started
    assert (status, error) == (None, "no complete answer within 1 s")
    assert elapsed < 2, f"the attempt took {elapsed:.1f} s, past its 1 s deadline"


async def test_a_redirect_is_reported_and_not_followed() -> None:
    async def nothing(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with raw_server(nothing) as (target, target_hits):

        async def redirect(writer: asyncio.StreamWriter) -> None:
            writer.write(
                f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )

        async with raw_server(redirect) as (url, hits):
            status, error, _excerpt = await dispatcher(timeout_seconds=5)._post(delivery(url))
    assert status == 307 and error == "HTTP 307: redirects are not followed"
    assert hits == [1] and target_hits == []
