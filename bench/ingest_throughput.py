"""Ingest throughput: accepted mentions/s and p99 latency through `POST /v1/mentions` (parse,
dedupe claim in PostgreSQL, Kafka acks=all, mark published), against a baseline measured in the
same run: raw aiokafka `send_and_wait` of the same envelope bytes with the same concurrency.

Needs Kafka and PostgreSQL (`make up`, or the variables below). Starts its own ingest process.
    .venv/bin/python bench/ingest_throughput.py [--requests 3000] [--concurrency 32]
Bounded: at most --requests requests and --max-seconds per side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from services.ingest.core import generic
from services.ingest.handlers import mention_event_id
from shared.events import EventType, TraceContext, new_envelope
from shared.kafka import ensure_topics
from shared.migrate import upgrade
from shared.topics import MENTIONS

REPO = Path(__file__).resolve().parents[1]
BENCH_PORT = 18101


def body(n: int, run: str) -> dict[str, object]:
    return {
        "id": f"bench-{run}-{n}", "channel": "x", "kind": "mention",
        "text": f"@AuroraTelecom la fibra lleva caída desde esta mañana, ¿sabéis algo? #{n}",
        "author": {"handle": f"bench_user_{n % 500}", "followers": 150 + n % 1000},
        "created_at": datetime.now(UTC).isoformat(), "conversation_id": f"bench-{run}-{n}",
        "language": "es", "brand": "Aurora Telecom",
    }


async def measure(label: str, requests: int, concurrency: int, max_seconds: float,
                  one: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    latencies: list[float] = []
    next_index = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await one(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    result = {
        "count": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }
    print(f"{label:<28} {result['count']:>6} in {elapsed:6.2f} s  {result['per_second']:8.0f}/s"
          f"  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms")
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=60)
    args = parser.parse_args()
    bootstrap = os.environ.get("SCS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    database_url = os.environ.get(
        "SCS_DATABASE_URL", "postgresql+asyncpg://scs:scs@127.0.0.1:5432/scs"
    )
    await asyncio.to_thread(upgrade, database_url)
    await ensure_topics(bootstrap)
    run = uuid.uuid4().hex[:8]

    # Baseline: the same envelope bytes, straight to Kafka with the same producer settings.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    payloads = []
    for n in range(args.requests):
        mention = generic.parse(generic.GenericMentionIn.model_validate(body(n, "base" + run)))
        m = mention.mentions[0]
        envelope = new_envelope(EventType.MENTION_RECEIVED, m, tenant="default",
                                subject=m.conversation_key, trace=TraceContext.new(),
                                event_id=mention_event_id(m))
        payloads.append((m.conversation_key.encode(), envelope.to_bytes()))

    async def raw_send(n: int) -> None:
        key, value = payloads[n]
        await producer.send_and_wait(MENTIONS.name, value=value, key=key)

    baseline = await measure("baseline aiokafka send", args.requests, args.concurrency,
                             args.max_seconds, raw_send)
    await producer.stop()

    env = {**os.environ, "SCS_INGEST_PORT": str(BENCH_PORT), "SCS_LOG_LEVEL": "WARNING",
           "SCS_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SCS_DATABASE_URL": database_url}
    process = subprocess.Popen([str(REPO / ".venv/bin/scs"), "serve", "ingest"], env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{BENCH_PORT}",
                                     limits=httpx.Limits(max_connections=args.concurrency)) as c:
            for _ in range(200):
                try:
                    if (await c.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

            async def post(n: int) -> None:
                response = await c.post("/v1/mentions", json=body(n, run))
                if response.status_code != 202:
                    raise SystemExit(f"unexpected {response.status_code}: {response.text}")

            service = await measure("POST /v1/mentions (202)", args.requests, args.concurrency,
                                    args.max_seconds, post)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"ratio ingest/baseline: throughput {service['per_second'] / baseline['per_second']:.2f}"
          f"  p99 latency {service['p99_ms'] / baseline['p99_ms']:.2f}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
