"""Ingest throughput: accepted mentions/s and p99 latency through `POST /v1/mentions` (parse,
dedupe claim in PostgreSQL, Kafka acks=all, mark published), against a baseline measured in the
same run: raw aiokafka `send_and_wait` of the same envelope bytes with the same concurrency.

The HTTP load comes from `wrk` (Debian package `wrk`), a C load generator, so the client's own
cost does not hide the service's; every request carries a new mention id, so every one is a
real accept (202), not a duplicate.

Needs Kafka and PostgreSQL (`make up`, or the variables below). Starts its own ingest process,
with SCS_INGEST_API_TOKEN when it is set (a fresh random token otherwise), and sends it.
    .venv/bin/python bench/ingest_throughput.py [--requests 3000] [--concurrency 32]
Bounded: the baseline sends --requests records; wrk runs --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
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
from shared.settings import ConnectionSettings, load_settings
from shared.topics import MENTIONS

REPO = Path(__file__).resolve().parents[1]
BENCH_PORT = 18101


def body(n: int, run: str) -> dict[str, object]:
    return {
        "id": f"bench-{run}-{n}",
        "channel": "x",
        "kind": "mention",
        "text": f"@AuroraTelecom la fibra lleva caída desde esta mañana, ¿sabéis algo? #{n}",
        "author": {"handle": f"bench_user_{n % 500}", "followers": 150 + n % 1000},
        "created_at": datetime.now(UTC).isoformat(),
        "conversation_id": f"bench-{run}-{n}",
        "language": "es",
        "brand": "Aurora Telecom",
    }


async def measure(
    label: str,
    requests: int,
    concurrency: int,
    max_seconds: float,
    one: Callable[[int], Awaitable[None]],
) -> dict[str, float]:
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
    print(
        f"{label:<28} {result['count']:>6} in {elapsed:6.2f} s  {result['per_second']:8.0f}/s"
        f"  p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms"
    )
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--seconds", type=float, default=10, help="wrk duration")
    args = parser.parse_args()
    connections = load_settings(ConnectionSettings)
    bootstrap, database_url = connections.kafka_bootstrap_servers, connections.database_url
    await asyncio.to_thread(upgrade, database_url)
    await ensure_topics(bootstrap)
    run = uuid.uuid4().hex[:8]

    # Baseline: the same envelope bytes, straight to Kafka with the same producer settings.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    payloads = []
    for n in range(args.requests):
        mention = generic.parse(generic.GenericMentionIn.model_validate(body(n, "base" + run)))
        m = mention.mentions[0]
        envelope = new_envelope(
            EventType.MENTION_RECEIVED,
            m,
            tenant="default",
            subject=m.conversation_key,
            trace=TraceContext.new(),
            event_id=mention_event_id(m),
        )
        payloads.append((m.conversation_key.encode(), envelope.to_bytes()))

    async def raw_send(n: int) -> None:
        key, value = payloads[n]
        await producer.send_and_wait(MENTIONS.name, value=value, key=key)

    baseline = await measure(
        "baseline aiokafka send", args.requests, args.concurrency, args.max_seconds, raw_send
    )
    await producer.stop()

    token = os.environ.get("SCS_INGEST_API_TOKEN") or secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "SCS_INGEST_API_TOKEN": token,
        "SCS_INGEST_PORT": str(BENCH_PORT),
        "SCS_LOG_LEVEL": "WARNING",
        "SCS_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SCS_DATABASE_URL": database_url,
    }
    process = await asyncio.create_subprocess_exec(
        str(REPO / ".venv/bin/scs"), "serve", "ingest", env=env
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{BENCH_PORT}") as client:
            for _ in range(200):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        service = await asyncio.to_thread(run_wrk, args.concurrency, args.seconds, run, token)
    finally:
        process.terminate()
        await process.wait()
    print(
        f"{'POST /v1/mentions (wrk)':<28} {service['count']:>6} in {args.seconds:6.2f} s"
        f"  {service['per_second']:8.0f}/s  p50 {service['p50_ms']:6.1f} ms"
        f"  p99 {service['p99_ms']:6.1f} ms  non-2xx {service['errors']:.0f}"
    )
    print(
        f"ratio ingest/baseline: throughput {service['per_second'] / baseline['per_second']:.2f}"
        f"  p99 latency {service['p99_ms'] / baseline['p99_ms']:.2f}"
    )


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
local counter = 0
request = function()
  counter = counter + 1
  local id = "RUN-" .. tostring(counter) .. "-" .. tostring(math.random(1000000000))
  local body = '{"id":"' .. id .. '","channel":"x","kind":"mention",' ..
    '"text":"@AuroraTelecom la fibra lleva caida desde esta manana, sabeis algo?",' ..
    '"author":{"handle":"bench_user","followers":150},"language":"es",' ..
    '"created_at":"2026-03-02T09:00:00+01:00","conversation_id":"' .. id .. '"}'
  return wrk.format(nil, "/v1/mentions", nil, body)
end
"""


def run_wrk(connections: int, seconds: float, run: str, token: str) -> dict[str, float]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the HTTP side: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.replace("RUN", run).replace("TOKEN", token))
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{BENCH_PORT}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()

    def latency_ms(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)", output, re.M)
        assert match, output
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    count = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "count": count,
        "per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        "p50_ms": latency_ms("50"),
        "p99_ms": latency_ms("99"),
        "errors": float(errors[1]) if errors else 0.0,
    }


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
