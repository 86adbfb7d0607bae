"""Router state shared by several instances, on the real PostgreSQL and broker: webhook leases
(a late attempt cannot overwrite a newer result; one endpoint gets a bounded share), the outbox
relay (two relays still publish in order; the relay runs on a timer, not only on new mentions),
and signing secrets (plaintext ones of rows before migration 0002 are encrypted at start, and a
new key put in front of the old one re-encrypts them).

Lease and two-relay tests use a scratch schema of their own, so their queues and the running
router's do not mix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.router import repository
from services.router.handlers import CaseRouter
from services.router.webhooks import UnreadableSecrets, encrypt_stored_secrets
from shared.db import Database, metadata
from shared.events import utcnow
from shared.kafka import EventProducer, ensure_topics
from shared.topics import Topic
from tests.integration.conftest import Stack, eventually, read_topic
from tests.integration.test_webhook_retries import query
from tests.unit.router.builders import sample_playbook


def scratch_engine(database_url: str, schema: str) -> AsyncEngine:
    """An engine whose tables are those of `schema` (search_path), not the running router's."""
    return create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": schema}}
    )


@pytest.fixture(scope="module")
async def scratch(stack: Stack) -> AsyncIterator[str]:
    """A schema of its own with the router's tables, dropped afterwards; yields its name."""
    schema = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(stack.infra.database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    tables = scratch_engine(stack.infra.database_url, schema)
    async with tables.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await tables.dispose()
    try:
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def engine(stack: Stack, scratch: str) -> AsyncIterator[AsyncEngine]:
    engine = scratch_engine(stack.infra.database_url, scratch)
    yield engine
    await engine.dispose()


async def add_endpoint(engine: AsyncEngine, *, enabled: bool = True) -> uuid.UUID:
    endpoint_id = uuid.uuid4()
    async with engine.begin() as conn:
        await repository.add_endpoint(
            conn,
            {
                "endpoint_id": endpoint_id,
                "tenant": "default",
                "url": "https://hooks.example.com/x",
                "event_types": ["case.created"],
                "secret_ciphertext": "unused here",
                "enabled": enabled,
            },
        )
    return endpoint_id


async def enqueue(engine: AsyncEngine, endpoint_id: uuid.UUID, count: int) -> None:
    async with engine.begin() as conn:
        await repository.enqueue_deliveries(
            conn,
            [
                {
                    "delivery_id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "event_id": uuid.uuid4(),
                    "event_type": "case.created",
                    "body": b"{}",
                    "status": "pending",
                    "next_attempt_at": utcnow() - timedelta(seconds=1),
                }
                for _ in range(count)
            ],
        )


async def lease(
    engine: AsyncEngine, *, seconds_from_now: float = 0, **kwargs: Any
) -> tuple[uuid.UUID, list[repository.LeasedDelivery]]:
    token = uuid.uuid4()
    now = utcnow() + timedelta(seconds=seconds_from_now)
    arguments: dict[str, Any] = {"limit": 16, "per_endpoint": 4, "in_flight": {}} | kwargs
    async with engine.begin() as conn:
        rows = await repository.lease_due_deliveries(
            conn, now=now, lease_until=now + timedelta(seconds=10), lease_token=token, **arguments
        )
    return token, rows


async def test_an_attempt_whose_lease_was_retaken_cannot_overwrite_the_newer_result(
    engine: AsyncEngine,
) -> None:
    endpoint_id = await add_endpoint(engine)
    await enqueue(engine, endpoint_id, 1)
    first, [row] = await lease(engine)
    assert (await lease(engine, seconds_from_now=5))[1] == []  # the lease holds
    # The first worker stalls past its lease; another takes the delivery and delivers it.
    second, [again] = await lease(engine, seconds_from_now=11)
    assert again.delivery_id == row.delivery_id and second != first
    delivered = {"status": "delivered", "delivered_at": utcnow(), "last_status_code": 204}
    async with engine.begin() as conn:
        assert await repository.record_attempt(
            conn, row.delivery_id, second, delivered, attempt(204)
        )
    late_failure = {"next_attempt_at": utcnow(), "last_status_code": 503, "last_error": "late"}
    async with engine.begin() as conn:
        assert not await repository.record_attempt(
            conn, row.delivery_id, first, late_failure, attempt(503)
        )
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text(
                    "SELECT status, attempts, last_status_code FROM webhook_deliveries "
                    "WHERE delivery_id = :d"
                ),
                {"d": row.delivery_id},
            )
        ).one()
    assert tuple(stored) == ("delivered", 1, 204)


async def test_one_endpoint_gets_a_bounded_share_and_disabled_ones_none(
    engine: AsyncEngine,
) -> None:
    busy, quiet, disabled = (
        await add_endpoint(engine),
        await add_endpoint(engine),
        await add_endpoint(engine, enabled=False),
    )
    await enqueue(engine, busy, 20)
    await enqueue(engine, quiet, 1)
    await enqueue(engine, disabled, 3)
    _, rows = await lease(engine, in_flight={busy: 1})
    taken = [r.endpoint_id for r in rows]
    assert taken.count(busy) == 3 and taken.count(quiet) == 1 and disabled not in taken
    _, rows = await lease(engine, in_flight={busy: 4})
    assert rows == []  # busy is saturated, quiet has nothing left, disabled is never leased


def attempt(status_code: int) -> repository.Attempt:
    return repository.Attempt(
        attempted_at=utcnow(),
        status_code=status_code,
        error=None if status_code < 300 else f"HTTP {status_code}",
        latency_ms=5,
        response_excerpt=None,
    )


async def new_test_topic(stack: Stack) -> str:
    name = f"test.relay.{uuid.uuid4().hex[:10]}"
    await ensure_topics(stack.infra.bootstrap, [Topic(name, frozenset(), partitions=1)])
    return name


async def test_two_relays_publish_one_case_in_order(
    stack: Stack, scratch: str, engine: AsyncEngine
) -> None:
    topic = await new_test_topic(stack)
    events = [uuid.uuid4() for _ in range(200)]
    async with engine.begin() as conn:
        await repository.add_outbox(
            conn,
            [
                {"event_id": e, "topic": topic, "key": b"x:one-case", "value": str(n).encode()}
                for n, e in enumerate(events)
            ],
        )
    relays: list[tuple[CaseRouter, Database, EventProducer]] = []
    for name in ("relay-a", "relay-b"):
        database = Database(stack.infra.database_url, pool_size=2)
        await database.engine.dispose()
        database.engine = scratch_engine(stack.infra.database_url, scratch)
        producer = EventProducer(stack.infra.bootstrap, name)
        await producer.start()
        relay = CaseRouter(database, producer, sample_playbook(), asyncio.Event(), outbox_batch=5)
        relays.append((relay, database, producer))
    # A relay only tries the lock: it stops when another holder (the other relay, or the stack's
    # own router ticking on the same database) has it, and the next tick goes on, as here.
    published = 0
    try:
        for _ in range(100):
            published += sum(
                await asyncio.gather(*(relay.relay_outbox() for relay, _, _ in relays))
            )
            if published >= len(events):
                break
            await asyncio.sleep(0.05)
    finally:
        for _, database, producer in relays:
            await producer.stop()
            await database.dispose()
    assert published == len(events)
    values = [int(record.value) for record in await read_topic(stack.infra.bootstrap, topic)]
    assert values == list(range(len(events)))


async def test_the_relay_runs_on_a_timer_without_new_mentions(stack: Stack) -> None:
    """An event left in the outbox (its publish failed) goes out with no mention arriving."""
    topic = await new_test_topic(stack)
    event_id = uuid.uuid4()
    await query(
        stack,
        "INSERT INTO router_outbox (event_id, topic, key, value) VALUES (:e, :t, :k, :v)",
        e=event_id,
        t=topic,
        k=b"x:timer",
        v=orjson.dumps({"id": str(event_id)}),
    )

    async def published() -> bool:
        return bool(await read_topic(stack.infra.bootstrap, topic))

    await eventually(published, timeout=15, interval=1)
    [row] = await query(
        stack, "SELECT published_at FROM router_outbox WHERE event_id = :e", e=event_id
    )
    assert row.published_at is not None


async def test_plaintext_secrets_are_encrypted_at_start_and_rotated_to_a_new_key(
    stack: Stack, scratch: str, engine: AsyncEngine
) -> None:
    endpoint_id, plaintext = uuid.uuid4(), "whsec_bGVnYWN5LXNlY3JldC1zdG9yZWQtaW4tY2xlYXI="
    async with engine.begin() as conn:
        # Only this endpoint: the module's other tests store placeholder ciphertexts that no
        # key reads, and an unreadable secret now stops the start (checked below).
        await conn.execute(text("DELETE FROM webhook_deliveries"))
        await conn.execute(text("DELETE FROM webhook_endpoints"))
        await conn.execute(
            text(
                "INSERT INTO webhook_endpoints (endpoint_id, tenant, url, event_types, secret) "
                "VALUES (:e, 'default', 'https://hooks.example.com/x', ARRAY['case.created'], :s)"
            ),
            {"e": endpoint_id, "s": plaintext},
        )
    database = Database(stack.infra.database_url, pool_size=1)
    await database.engine.dispose()
    database.engine = scratch_engine(stack.infra.database_url, scratch)
    old, new = Fernet(Fernet.generate_key()), Fernet(Fernet.generate_key())

    async def stored() -> tuple[str | None, str]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT secret, secret_ciphertext FROM webhook_endpoints "
                        "WHERE endpoint_id = :e"
                    ),
                    {"e": endpoint_id},
                )
            ).one()
        return row.secret, row.secret_ciphertext

    try:
        assert await encrypt_stored_secrets(database, MultiFernet([old])) == 1
        secret, ciphertext = await stored()
        assert secret is None and old.decrypt(ciphertext.encode()).decode() == plaintext
        assert await encrypt_stored_secrets(database, MultiFernet([new, old])) == 0
        _, rotated = await stored()
        assert new.decrypt(rotated.encode()).decode() == plaintext
        # A key list that lost the key the secrets are under is refused at start, naming the
        # endpoint, instead of failing every delivery for hours.
        with pytest.raises(UnreadableSecrets) as refused:
            await encrypt_stored_secrets(database, MultiFernet([old]))
        assert refused.value.endpoint_ids == [str(endpoint_id)]
        _, unchanged = await stored()
        assert unchanged == rotated
    finally:
        await database.dispose()
