"""The real thing: Kafka and PostgreSQL started by deploy/local/test.sh, and the four services
run as separate processes (`scs serve ...`), exactly as in production but on test ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.kafka import ensure_topics
from shared.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
SCS = REPO / ".venv" / "bin" / "scs"
ADMIN_KEY = "test-admin-key-0123456789"
INGEST_TOKEN = "test-ingest-token-0123456789"
CLASSIFIER_TOKEN = "test-classifier-token-0123456789"
# Bearer header for ingest's unsigned endpoints (closed unless SCS_INGEST_ALLOW_ANONYMOUS).
INGEST_AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
# Fernet key for the webhook signing secrets at rest (a fixed test value, never a real one).
WEBHOOK_SECRETS_KEY = "dGVzdC13ZWJob29rLXNlY3JldHMta2V5LTAxMjM0NTY="
X_SECRET = "test-x-consumer-secret"
META_SECRET = "test-meta-app-secret"
META_VERIFY_TOKEN = "test-meta-verify-token"
PORTS = {"ingest": 18001, "classifier": 18002, "router": 18003, "kpi": 18004}
# The stack's own tenant (SCS_TENANT: INGEST_TOKEN and the signed webhooks speak for it), and a
# second tenant with its own ingest token (test_tenants.py).
TENANT = "default"
OTHER_TENANT = "tenant-b"
OTHER_INGEST_TOKEN = "test-ingest-token-tenant-b-0123"
OTHER_INGEST_AUTH = {"Authorization": f"Bearer {OTHER_INGEST_TOKEN}"}


INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests in this folder are integration tests; tests that stop shared parts run last.

    The hook sees every collected item of the session, unit tests included: only the ones under
    tests/integration get the marker, so `-m "not integration"` selects the unit tests.
    """
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run the suite with `make test`, which starts Kafka "
            "and PostgreSQL for it"
        )
    return value


@dataclass
class Infra:
    bootstrap: str
    database_url: str


@pytest.fixture(scope="session")
def infra() -> Infra:
    return Infra(
        bootstrap=_required("SCS_TEST_KAFKA_BOOTSTRAP_SERVERS"),
        database_url=_required("SCS_TEST_DATABASE_URL"),
    )


@pytest.fixture(scope="session")
async def prepared(infra: Infra) -> Infra:
    """A fresh schema and every topic; test.sh starts each run with an empty broker."""
    engine = create_async_engine(infra.database_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    await asyncio.to_thread(upgrade, infra.database_url)
    await ensure_topics(infra.bootstrap)
    return infra


class ServiceProcess:
    def __init__(
        self, name: str, env: dict[str, str], log_dir: Path, *, port: int | None = None
    ) -> None:
        self.name = name
        self.port = port or PORTS[name]
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = env
        self.log_path = log_dir / (f"{name}.log" if port is None else f"{name}-{port}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **extra_env: str) -> None:
        """Start `scs serve NAME`; `extra_env` adds variables, e.g. SCS_FAILPOINTS for a crash."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(SCS), "serve", self.name],
            env={**self._env, f"SCS_{self.name.upper()}_PORT": str(self.port), **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no final commit — the crash case."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=40)

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, (
                    f"{self.name} exited; log: {self.log_path.read_text()[-3000:]}"
                )
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)
        raise AssertionError(f"{self.name} not ready; log: {self.log_path.read_text()[-3000:]}")


@dataclass
class Stack:
    infra: Infra
    services: dict[str, ServiceProcess]

    def url(self, name: str) -> str:
        return self.services[name].url


@pytest.fixture(scope="session")
async def stack(prepared: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    log_dir = Path(os.environ.get("SCS_TEST_LOG_DIR", tmp_path_factory.mktemp("logs")))
    env = {
        **os.environ,
        "SCS_KAFKA_BOOTSTRAP_SERVERS": prepared.bootstrap,
        "SCS_DATABASE_URL": prepared.database_url,
        "SCS_ADMIN_API_KEY": ADMIN_KEY,
        "SCS_ROUTER_WEBHOOK_ALLOW_INSECURE_URLS": "true",
        "SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "SCS_ROUTER_WEBHOOK_SECRETS_KEY": WEBHOOK_SECRETS_KEY,
        "SCS_TENANT": TENANT,
        "SCS_INGEST_API_TOKEN": INGEST_TOKEN,
        "SCS_INGEST_TENANT_TOKENS": json.dumps({OTHER_TENANT: OTHER_INGEST_TOKEN}),
        "SCS_KPI_TENANTS": json.dumps([OTHER_TENANT]),
        "SCS_CLASSIFIER_API_TOKEN": CLASSIFIER_TOKEN,
        "SCS_KPI_REFRESH_SECONDS": "1",
        "SCS_SHUTDOWN_GRACE_SECONDS": "10",
        "SCS_ROUTER_WEBHOOK_RETRY_DELAYS_SECONDS": "[0.5, 0.5, 0.5]",
        "SCS_INGEST_X_CONSUMER_SECRET": X_SECRET,
        "SCS_INGEST_META_APP_SECRET": META_SECRET,
        "SCS_INGEST_META_VERIFY_TOKEN": META_VERIFY_TOKEN,
    }
    services = {name: ServiceProcess(name, env, log_dir) for name in PORTS}
    for service in services.values():
        service.start()
    try:
        await asyncio.gather(*(s.wait_ready() for s in services.values()))
        yield Stack(prepared, services)
    finally:
        for service in services.values():
            if service.process and service.process.poll() is None:
                service.terminate()


@dataclass
class Receiver:
    """A stand-in agent desktop: verifies Standard Webhooks signatures and keeps every event."""

    url: str
    secret: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [event for event in self.events if predicate(event)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def receiver(stack: Stack) -> AsyncIterator[Receiver]:
    port = _free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hooks")
    app = FastAPI()

    @app.post("/hooks")
    async def hooks(request: Request) -> Response:
        body = await request.body()
        try:
            assert state.secret is not None
            event = Webhook(state.secret).verify(body, dict(request.headers))
        except (AssertionError, WebhookVerificationError):
            state.rejected += 1
            return Response(status_code=401)
        state.events.append({"headers": dict(request.headers), **event})
        return Response(status_code=204)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, timeout=10, interval=0.05, what="the receiver started")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{stack.url('router')}/v1/webhook-endpoints",
            headers=ADMIN_AUTH,
            json={"url": state.url, "events": ["case.created", "case.updated", "case.responded"]},
        )
    assert response.status_code == 201, response.text
    state.secret = response.json()["secret"]
    yield state
    server.should_exit = True
    await task


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 60,
    interval: float = 0.25,
    what: str = "condition",
) -> None:
    """Poll until `check` is true; fail saying what was awaited and for how long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = check()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s")


async def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[Any]:
    """Every record currently on `topic`, from the beginning (no consumer group).

    Fails after `timeout` seconds naming the topic, rather than hanging until pytest-timeout.
    """
    try:
        async with asyncio.timeout(timeout):
            return await _read_topic(bootstrap, topic)
    except TimeoutError:
        raise AssertionError(f"reading {topic} did not finish within {timeout} s") from None


async def _read_topic(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = consumer.assignment() or set()
        while not partitions:
            await asyncio.sleep(0.1)
            partitions = consumer.assignment()
        end = await consumer.end_offsets(list(partitions))
        records: list[Any] = []
        while [tp for tp, offset in end.items() if await consumer.position(tp) < offset]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            records.extend(r for rs in batches.values() for r in rs)
        return records
    finally:
        await consumer.stop()
