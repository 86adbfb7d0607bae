"""Webhook deliveries/s: the router's dispatcher (lease from PostgreSQL, sign, POST, record the
attempt) to a local receiver, against a plain httpx POST loop of the same bodies with the same
concurrency, measured in the same run.

Needs PostgreSQL (`make up`, or SCS_DATABASE_URL); works in a schema of its own, dropped at the
end, so a running stack is not touched. The receiver is a uvicorn app on 127.0.0.1 answering 204.
    .venv/bin/python -m bench.webhook_throughput [--deliveries 3000] [--concurrency 16] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import orjson
import uvicorn
from cryptography.fernet import Fernet, MultiFernet
from fastapi import FastAPI, Response
from sqlalchemy import text

from bench.router_throughput import in_schema
from services.router import repository
from services.router.webhooks import WebhookDispatcher, new_secret
from shared.db import Database
from shared.events import utcnow
from shared.migrate import upgrade

DEFAULT_DATABASE_URL = "postgresql+asyncpg://scs:scs@127.0.0.1:5432/scs"


class Counting:
    def __init__(self) -> None:
        self.received = 0
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self) -> Response:
        self.received += 1
        return Response(status_code=204)


@asynccontextmanager
async def receiver(app: FastAPI) -> AsyncIterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no started event)
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        server.should_exit = True
        await task


def body(n: int) -> bytes:
    return orjson.dumps(
        {
            "type": "case.created",
            "timestamp": utcnow().isoformat(),
            "data": {"n": n, "x": "y" * 900},
        }
    )


async def plain_loop(url: str, count: int, concurrency: int) -> float:
    """The baseline: the same bodies POSTed by `concurrency` workers, nothing else."""
    bodies = [body(n) for n in range(count)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                content = queue.get_nowait()
                response = await client.post(url, content=content)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def dispatcher_run(db: Database, url: str, count: int, concurrency: int) -> float:
    cipher = MultiFernet([Fernet(Fernet.generate_key())])
    endpoint_id = uuid.uuid4()
    async with db.begin() as conn:
        await repository.add_endpoint(
            conn,
            {
                "endpoint_id": endpoint_id,
                "tenant": "bench",
                "url": url,
                "event_types": ["case.created"],
                "secret_ciphertext": cipher.encrypt(new_secret().encode()).decode(),
            },
        )
        now = utcnow()
        await repository.enqueue_deliveries(
            conn,
            [
                {
                    "delivery_id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "event_id": uuid.uuid4(),
                    "event_type": "case.created",
                    "body": body(n),
                    "status": "pending",
                    "next_attempt_at": now,
                }
                for n in range(count)
            ],
        )
    dispatcher = WebhookDispatcher(
        db,
        timeout_seconds=10,
        lease_seconds=15,
        concurrency=concurrency,
        endpoint_concurrency=concurrency,
        retry_delays=[timedelta(seconds=1)],
        allowed_networks=[ipaddress.ip_network("127.0.0.0/8")],
        secrets_cipher=cipher,
        due=asyncio.Event(),
    )
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run())
    try:
        while True:
            async with db.begin() as conn:
                left = await conn.execute(
                    text(
                        "SELECT count(*) FROM webhook_deliveries "
                        "WHERE endpoint_id = :e AND status <> 'delivered'"
                    ),
                    {"e": endpoint_id},
                )
                if left.scalar_one() == 0:
                    break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dispatcher.close()
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    database_url = os.environ.get("SCS_DATABASE_URL", DEFAULT_DATABASE_URL)
    schema = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    setup = Database(database_url, pool_size=1)
    async with setup.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = in_schema(database_url, schema)
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    counting = Counting()
    plain: list[float] = []
    routed: list[float] = []
    try:
        async with receiver(counting.app) as hook_url:
            for rep in range(args.reps):
                plain.append(await plain_loop(hook_url, args.deliveries, args.concurrency))
                routed.append(await dispatcher_run(db, hook_url, args.deliveries, args.concurrency))
                print(
                    f"rep {rep + 1}: plain POST loop {plain[-1]:,.0f}/s, "
                    f"dispatcher {routed[-1]:,.0f}/s",
                    file=sys.stderr,
                )
    finally:
        await db.dispose()
        async with setup.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await setup.dispose()
    baseline, measured = statistics.median(plain), statistics.median(routed)
    print(
        f"webhook deliveries: {args.deliveries:,} x {args.reps} reps, concurrency "
        f"{args.concurrency}, ~1 KB bodies, medians\n"
        f"  plain httpx POST loop       {baseline:8,.0f}/s\n"
        f"  router dispatcher           {measured:8,.0f}/s   {measured / baseline:.2f}x "
        f"(lease, sign, POST, record each attempt)"
    )


if __name__ == "__main__":
    asyncio.run(main())
