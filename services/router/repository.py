"""Router tables: cases, the mentions threaded into them, webhook endpoints and deliveries, and
the outbox of case events still to be published to Kafka."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    case,
    delete,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, array, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from services.router.core import Timer
from services.router.core.agents import AgentProfile, Presence
from services.router.core.assignment import LOADED, StoredAgent
from services.router.core.sla import sla_state
from shared.db import metadata
from shared.events import Case, Classification, Crisis, Mention, MentionClassified, Routing

cases = Table(
    "router_cases",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("conversation_key", String(600), nullable=False),
    Column("generation", Integer, nullable=False, server_default="0"),
    Column("channel", String(32), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("language", String(16), nullable=False),
    Column("author_handle", String(256), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("first_response_due_at", DateTime(timezone=True), nullable=False),
    Column("first_response_at", DateTime(timezone=True)),
    Column("mention_count", Integer, nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("crisis_id", Uuid),
    # The agent working it: loads are counted, and `next` finds unassigned cases, by it.
    Column("assignee", String(128)),
    # The whole case (clocks, tags, escalation); the columns above are what is queried.
    # Cases stored before 0004 have none and are read from their columns.
    Column("document", JSONB),
    # The worst running clock (breached, warning, running), else met / missed / none.
    Column("sla_state", String(16), nullable=False, server_default="none"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint(
        "tenant",
        "conversation_key",
        "generation",
        name="uq_router_cases_conversation_generation",
    ),
    # Desktops page through a tenant's cases by last change (keyset pagination).
    Index("ix_router_cases_tenant_updated", "tenant", "updated_at", "case_id"),
    Index(
        "ix_router_cases_assignee_open",
        "tenant",
        "assignee",
        postgresql_where="status IN ('open', 'responded') AND assignee IS NOT NULL",
    ),
    Index(
        "ix_router_cases_unassigned_open",
        "tenant",
        "first_response_due_at",
        postgresql_where="status = 'open' AND assignee IS NULL",
    ),
)

case_events = Table(
    "router_case_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # What the event said beyond the case: the mention, the routing, the clock, the escalation.
    Column("detail", JSONB, nullable=False),
    Index("ix_router_case_events_case", "case_id", "occurred_at"),
)

case_mentions = Table(
    "router_case_mentions",
    metadata,
    Column("mention_id", Uuid, primary_key=True),
    Column("case_id", Uuid, ForeignKey("router_cases.case_id"), nullable=True, index=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("mention", JSONB, nullable=False),
    Column("classification", JSONB),
    # How the playbook routed it: every rule looked at, hours, acknowledgement (None: a reply).
    Column("routing", JSONB),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("endpoint_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(String(64)), nullable=False),
    # Plaintext signing secret of endpoints registered before 0002; the router encrypts it into
    # secret_ciphertext and clears it at start. New endpoints never have it.
    Column("secret", String(128)),
    # Fernet token of the signing secret (SCS_ROUTER_WEBHOOK_SECRETS_KEY).
    Column("secret_ciphertext", Text),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Only cases of these queues / priorities (NULL: all); crisis events ignore them.
    Column("queues", ARRAY(String(64))),
    Column("priorities", ARRAY(String(2))),
    # Circuit breaker: failures in a row, and while open, no attempt before this time.
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("paused_until", DateTime(timezone=True)),
    # The secret before the last rotation: deliveries carry both signatures until this time.
    Column("previous_secret_ciphertext", Text),
    Column("previous_secret_until", DateTime(timezone=True)),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    # Also the `webhook-id` header: the receiver's idempotency key across retries.
    Column("delivery_id", Uuid, primary_key=True),
    Column("endpoint_id", Uuid, ForeignKey("webhook_endpoints.endpoint_id"), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    # Set by each lease: only the holder of the current lease may record an attempt's result.
    Column("lease_token", Uuid),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    # The lease reads each endpoint's oldest due deliveries: one index range per endpoint.
    Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    Index(
        "ix_webhook_deliveries_pending_per_endpoint",
        "endpoint_id",
        "next_attempt_at",
        postgresql_where="status = 'pending'",
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("attempt_id", Uuid, primary_key=True),
    Column("delivery_id", Uuid, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("latency_ms", Integer, nullable=False),
    # The first bytes the receiver answered with (for a person reading the log).
    Column("response_excerpt", Text),
    Index("ix_webhook_attempts_delivery", "delivery_id", "attempted_at"),
)

outbox = Table(
    "router_outbox",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    # Publication order: case events of one conversation reach Kafka in the order they happened.
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_router_outbox_unpublished", "seq", postgresql_where="published_at IS NULL"),
)

timers = Table(
    "router_timers",
    metadata,
    Column("timer_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("case_id", Uuid),
    Column("crisis_id", Uuid),
    Column("clock", String(32)),
    Column("timer", JSONB, nullable=False),
    # Set in the transaction that acted on it: a timer fires once, and is never armed again.
    Column("fired_at", DateTime(timezone=True)),
    Index("ix_router_timers_pending_due", "due_at", postgresql_where="fired_at IS NULL"),
    Index("ix_router_timers_pending_case", "case_id", "clock", postgresql_where="fired_at IS NULL"),
    Index("ix_router_timers_fired", "fired_at", postgresql_where="fired_at IS NOT NULL"),
)

crises = Table(
    "router_crises",
    metadata,
    Column("crisis_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("topic_key", String(256), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("document", JSONB, nullable=False),
    Index(
        "ix_router_crises_open_topic",
        "tenant",
        "topic_key",
        unique=True,
        postgresql_where="closed_at IS NULL",
    ),
)

CASE_COLUMNS = [c for c in cases.c if c.name not in ("updated_at", "document", "sla_state")]
# pg_advisory_xact_lock key of the outbox relay (any constant unique in the database).
OUTBOX_RELAY_LOCK = 0x5C5_0B0C


def _case(row: Any) -> Case:
    document = row._mapping.get("document")
    return Case.model_validate(document if document is not None else row._mapping)


def case_of_row(row: Any) -> Case:
    """A case from a row with CASE_COLUMNS and the document (for queries in other modules)."""
    return _case(row)


# pg_advisory_xact_lock(space, hashtext(key)) name spaces: one conversation, one crisis topic.
CONVERSATION_LOCKS = 0x5C5_C0
CRISIS_TOPIC_LOCKS = 0x5C5_C1


async def lock_keys(conn: AsyncConnection, space: int, keys: list[str]) -> None:
    """Hold a lock per key until the transaction ends, taken in one order (no deadlock).

    Row locks cannot cover what has no row yet: a new conversation's first case, a topic's
    first crisis. Two batches (a partition's new owner and a member that lost it but still
    runs; two partitions opening the same crisis) would otherwise both create it."""
    if keys:
        hashes = select(func.hashtext(func.unnest(array(keys))).label("h")).subquery()
        await conn.execute(
            select(func.count()).select_from(
                select(func.pg_advisory_xact_lock(space, hashes.c.h))
                .order_by(hashes.c.h)
                .subquery()
            )
        )


async def known_mentions(conn: AsyncConnection, mention_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    result = await conn.execute(
        select(case_mentions.c.mention_id).where(case_mentions.c.mention_id.in_(mention_ids))
    )
    return {row[0] for row in result}


async def cases_for_update(
    conn: AsyncConnection, tenant: str, conversation_keys: list[str]
) -> dict[str, Case]:
    """Lock the conversations' cases for this transaction (another router replica waits);
    the latest generation of each conversation."""
    result = await conn.execute(
        select(*CASE_COLUMNS, cases.c.document)
        .where(and_(cases.c.tenant == tenant, cases.c.conversation_key.in_(conversation_keys)))
        .order_by(cases.c.conversation_key, cases.c.generation)
        .with_for_update()
    )
    return {row.conversation_key: _case(row) for row in result}


async def cases_by_id_for_update(
    conn: AsyncConnection, tenant: str, case_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, Case], set[uuid.UUID]]:
    """Lock these cases without waiting: (the cases locked, the ids another transaction holds).

    The timer worker never waits for a case a mention batch holds: it takes those timers on
    its next round. Waiting could deadlock with a batch that cancels the worker's timers.
    """
    result = await conn.execute(
        select(*CASE_COLUMNS, cases.c.document)
        .where(and_(cases.c.tenant == tenant, cases.c.case_id.in_(case_ids)))
        .with_for_update(skip_locked=True)
    )
    locked = {row.case_id: _case(row) for row in result}
    return locked, await _held_elsewhere(conn, cases.c.case_id, case_ids, locked)


async def _held_elsewhere(
    conn: AsyncConnection, key: Any, wanted: list[uuid.UUID], locked: Mapping[uuid.UUID, object]
) -> set[uuid.UUID]:
    """Of the rows SKIP LOCKED left out, those that exist: another transaction holds them."""
    missing = [i for i in wanted if i not in locked]
    if not missing:
        return set()
    result = await conn.execute(select(key).where(key.in_(missing)))
    return {row[0] for row in result}


def _upsert_cases_statement() -> Any:
    statement = insert(cases)
    return statement.on_conflict_do_update(
        index_elements=[cases.c.case_id],
        set_={
            **{c.name: statement.excluded[c.name] for c in CASE_COLUMNS if c.name != "case_id"},
            "document": statement.excluded.document,
            "sla_state": statement.excluded.sla_state,
            "updated_at": func.now(),
        },
    )


# Batch writes are one statement executed over many rows (executemany), built once: a multi-row
# VALUES statement is compiled again for every batch size, which cost more than the writing.
UPSERT_CASES = _upsert_cases_statement()
ADD_MENTIONS = insert(case_mentions).on_conflict_do_nothing()
ENQUEUE_DELIVERIES = insert(webhook_deliveries).on_conflict_do_nothing()
ADD_OUTBOX = insert(outbox).on_conflict_do_nothing()
ADD_TIMERS = insert(timers).on_conflict_do_nothing()
ADD_CASE_EVENTS = insert(case_events).on_conflict_do_nothing()


async def upsert_cases(conn: AsyncConnection, changed: list[Case]) -> None:
    if changed:
        await conn.execute(
            UPSERT_CASES,
            [
                {
                    **{c.name: getattr(case, c.name) for c in CASE_COLUMNS},
                    "channel": case.channel.value,
                    "priority": case.priority.value,
                    "status": case.status.value,
                    "document": case.model_dump(mode="json"),
                    "sla_state": sla_state(case),
                }
                for case in changed
            ],
        )


async def add_mentions(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(ADD_MENTIONS, rows)


async def endpoints_for(conn: AsyncConnection, tenant: str) -> list[Endpoint]:
    result = await conn.execute(
        select(webhook_endpoints)
        .where(webhook_endpoints.c.tenant == tenant)
        .order_by(webhook_endpoints.c.created_at)
    )
    return _typed(result, Endpoint)


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: uuid.UUID
    url: str
    event_types: list[str]
    enabled: bool
    queues: list[str] | None
    priorities: list[str] | None
    consecutive_failures: int
    paused_until: datetime | None


@dataclass(frozen=True)
class StoredSecret:
    """An endpoint's signing secret as stored: plaintext (before 0002) or ciphertext."""

    endpoint_id: uuid.UUID
    secret: str | None
    secret_ciphertext: str | None


@dataclass(frozen=True)
class LeasedDelivery:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret_ciphertext: str | None
    previous_secret_ciphertext: str | None
    previous_secret_until: datetime | None
    body: bytes
    attempts: int
    lease_token: uuid.UUID
    created_at: datetime


@dataclass(frozen=True)
class OutboxRecord:
    event_id: uuid.UUID
    topic: str
    key: bytes
    value: bytes


RowT = TypeVar("RowT")


def _typed(result: Any, row_type: type[RowT]) -> list[RowT]:
    """Rows as `row_type` (a dataclass), taking the columns it declares."""
    names = [f.name for f in fields(row_type)]  # type: ignore[arg-type]
    return [row_type(**{n: row._mapping[n] for n in names}) for row in result]


@dataclass(frozen=True)
class Subscription:
    """An enabled endpoint and what it asked for: what fan-out needs."""

    endpoint_id: uuid.UUID
    event_types: frozenset[str]
    queues: frozenset[str] | None = None
    priorities: frozenset[str] | None = None

    def wants(self, event_type: str, queue: str | None, priority: str | None) -> bool:
        """Its event types, and for case events its queues and priorities (if it named any)."""
        return (
            event_type in self.event_types
            and (queue is None or self.queues is None or queue in self.queues)
            and (priority is None or self.priorities is None or priority in self.priorities)
        )


async def subscriptions(conn: AsyncConnection, tenant: str) -> list[Subscription]:
    result = await conn.execute(
        select(
            webhook_endpoints.c.endpoint_id,
            webhook_endpoints.c.event_types,
            webhook_endpoints.c.queues,
            webhook_endpoints.c.priorities,
        )
        .where(and_(webhook_endpoints.c.tenant == tenant, webhook_endpoints.c.enabled.is_(True)))
        .order_by(webhook_endpoints.c.created_at)
    )
    return [
        Subscription(
            row.endpoint_id,
            frozenset(row.event_types),
            frozenset(row.queues) if row.queues is not None else None,
            frozenset(row.priorities) if row.priorities is not None else None,
        )
        for row in result
    ]


async def add_endpoint(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_endpoints).values(row))


async def enqueue_deliveries(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(ENQUEUE_DELIVERIES, rows)


async def set_endpoint_enabled(
    conn: AsyncConnection, tenant: str, endpoint_id: uuid.UUID, enabled: bool
) -> Endpoint | None:
    result = await conn.execute(
        update(webhook_endpoints)
        .where(
            and_(
                webhook_endpoints.c.tenant == tenant, webhook_endpoints.c.endpoint_id == endpoint_id
            )
        )
        .values(enabled=enabled)
        .returning(webhook_endpoints)
    )
    found = _typed(result, Endpoint)
    return found[0] if found else None


async def endpoint_secrets(conn: AsyncConnection) -> list[StoredSecret]:
    """Every endpoint's stored secret, locked: plaintext (before 0002) or ciphertext."""
    result = await conn.execute(
        select(
            webhook_endpoints.c.endpoint_id,
            webhook_endpoints.c.secret,
            webhook_endpoints.c.secret_ciphertext,
        ).with_for_update()
    )
    return _typed(result, StoredSecret)


async def store_secret_ciphertext(
    conn: AsyncConnection, endpoint_id: uuid.UUID, ciphertext: str
) -> None:
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.endpoint_id == endpoint_id)
        .values(secret_ciphertext=ciphertext, secret=None)
    )


async def lease_due_deliveries(
    conn: AsyncConnection,
    *,
    now: datetime,
    lease_until: datetime,
    lease_token: uuid.UUID,
    limit: int,
    per_endpoint: int,
    in_flight: Mapping[uuid.UUID, int],
) -> list[LeasedDelivery]:
    """Take due deliveries of enabled endpoints by pushing their next attempt to `lease_until`.

    At most `per_endpoint` minus what this worker already has in flight per endpoint, so one
    slow endpoint cannot fill every slot; oldest first. SKIP LOCKED lets several router replicas
    share the queue; the lease means a delivery whose worker died is simply due again later,
    never lost, and `lease_token` lets only the latest lease record a result.
    """
    due = (
        select(webhook_deliveries.c.delivery_id, webhook_deliveries.c.next_attempt_at)
        .where(
            and_(
                webhook_deliveries.c.endpoint_id == webhook_endpoints.c.endpoint_id,
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_at <= now,
            )
        )
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(per_endpoint)
        .with_for_update(skip_locked=True)
        .lateral("due")
    )
    saturated = [e for e, n in in_flight.items() if n >= per_endpoint]
    candidates = await conn.execute(
        select(webhook_endpoints.c.endpoint_id, due.c.delivery_id)
        .select_from(webhook_endpoints.join(due, true()))
        .where(
            and_(
                webhook_endpoints.c.enabled.is_(True),
                webhook_endpoints.c.endpoint_id.not_in(saturated),
                or_(
                    webhook_endpoints.c.paused_until.is_(None),
                    webhook_endpoints.c.paused_until <= now,
                ),
            )
        )
        .order_by(due.c.next_attempt_at)
        .limit(limit)
    )
    taken: Counter[uuid.UUID] = Counter()
    chosen: list[uuid.UUID] = []
    for endpoint_id, delivery_id in candidates:
        if in_flight.get(endpoint_id, 0) + taken[endpoint_id] < per_endpoint:
            taken[endpoint_id] += 1
            chosen.append(delivery_id)
    if not chosen:
        return []
    leased = (
        update(webhook_deliveries)
        .where(webhook_deliveries.c.delivery_id.in_(chosen))
        .values(next_attempt_at=lease_until, lease_token=lease_token)
        .returning(webhook_deliveries)
        .cte("leased")
    )
    result = await conn.execute(
        select(
            leased,
            webhook_endpoints.c.url,
            webhook_endpoints.c.secret_ciphertext,
            webhook_endpoints.c.previous_secret_ciphertext,
            webhook_endpoints.c.previous_secret_until,
        ).join(webhook_endpoints, webhook_endpoints.c.endpoint_id == leased.c.endpoint_id)
    )
    return _typed(result, LeasedDelivery)


@dataclass(frozen=True)
class Attempt:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: uuid.UUID,
    lease_token: uuid.UUID,
    values: dict[str, Any],
    attempt: Attempt,
) -> bool:
    """Record an attempt's result and log it; False (nothing written) when the lease was taken
    since."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(
            and_(
                webhook_deliveries.c.delivery_id == delivery_id,
                webhook_deliveries.c.lease_token == lease_token,
                webhook_deliveries.c.status == "pending",
            )
        )
        .values(attempts=webhook_deliveries.c.attempts + 1, **values)
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        insert(webhook_attempts).values(
            attempt_id=uuid.uuid4(), delivery_id=delivery_id, **vars(attempt)
        )
    )
    await _trip_or_close_circuit(conn, delivery_id, attempt)
    return True


# A circuit opens after this many failures in a row, for a cool-off that doubles with each
# further failure, from CIRCUIT_COOL_OFF_SECONDS up to an hour.
CIRCUIT_FAILURES = 5
CIRCUIT_COOL_OFF_SECONDS = 30
CIRCUIT_MAX_COOL_OFF_SECONDS = 3600


async def _trip_or_close_circuit(
    conn: AsyncConnection, delivery_id: uuid.UUID, attempt: Attempt
) -> None:
    endpoint = select(webhook_deliveries.c.endpoint_id).where(
        webhook_deliveries.c.delivery_id == delivery_id
    )
    this = webhook_endpoints.c.endpoint_id == endpoint.scalar_subquery()
    if attempt.error is None:
        await conn.execute(
            update(webhook_endpoints).where(this).values(consecutive_failures=0, paused_until=None)
        )
        return
    failures = webhook_endpoints.c.consecutive_failures + 1
    excess = func.greatest(failures - CIRCUIT_FAILURES, 0)
    cool_off = func.least(
        CIRCUIT_COOL_OFF_SECONDS * func.power(2, excess), CIRCUIT_MAX_COOL_OFF_SECONDS
    )
    await conn.execute(
        update(webhook_endpoints)
        .where(this)
        .values(
            consecutive_failures=failures,
            paused_until=case(
                (
                    failures >= CIRCUIT_FAILURES,
                    attempt.attempted_at + func.make_interval(0, 0, 0, 0, 0, 0, cool_off),
                ),
                else_=webhook_endpoints.c.paused_until,
            ),
        )
    )


async def disable_endpoint_of(conn: AsyncConnection, delivery_id: uuid.UUID) -> None:
    """The receiver said 410 Gone: its endpoint gets nothing more until re-enabled."""
    endpoint = select(webhook_deliveries.c.endpoint_id).where(
        webhook_deliveries.c.delivery_id == delivery_id
    )
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.endpoint_id == endpoint.scalar_subquery())
        .values(enabled=False)
    )


async def delivery_counts(conn: AsyncConnection, tenant: str) -> dict[str, int]:
    """Deliveries per status to the tenant's endpoints."""
    own = select(webhook_endpoints.c.endpoint_id).where(webhook_endpoints.c.tenant == tenant)
    result = await conn.execute(
        select(webhook_deliveries.c.status, func.count())
        .where(webhook_deliveries.c.endpoint_id.in_(own.scalar_subquery()))
        .group_by(webhook_deliveries.c.status)
    )
    return {row[0]: int(row[1]) for row in result}


async def case_counts(
    conn: AsyncConnection, tenant: str, queues: frozenset[str] | None = None
) -> dict[str, int]:
    """Cases per priority of the tenant (of these queues only, when given)."""
    condition: ColumnElement[bool] = cases.c.tenant == tenant
    if queues is not None:
        condition = and_(condition, cases.c.queue.in_(sorted(queues)))
    result = await conn.execute(
        select(cases.c.priority, func.count()).where(condition).group_by(cases.c.priority)
    )
    return {row[0]: int(row[1]) for row in result}


async def add_outbox(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(ADD_OUTBOX, rows)


async def lock_outbox_relay(conn: AsyncConnection) -> bool:
    """Try to make this transaction the only outbox relay, across router replicas, until it
    ends; False when another relay holds it.

    Relays that skipped each other's locked rows could publish a later event of a case before
    an earlier one; one relay at a time publishes in `seq` order.
    """
    result = await conn.execute(select(func.pg_try_advisory_xact_lock(OUTBOX_RELAY_LOCK)))
    return bool(result.scalar_one())


async def unpublished_outbox(conn: AsyncConnection, limit: int) -> list[OutboxRecord]:
    """The oldest unpublished events; call after `lock_outbox_relay` in the same transaction."""
    result = await conn.execute(
        select(outbox.c.event_id, outbox.c.topic, outbox.c.key, outbox.c.value)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.seq)
        .limit(limit)
    )
    return _typed(result, OutboxRecord)


async def mark_outbox_published(
    conn: AsyncConnection, event_ids: list[uuid.UUID], now: datetime
) -> None:
    await conn.execute(
        update(outbox).where(outbox.c.event_id.in_(event_ids)).values(published_at=now)
    )


async def prune_outbox(conn: AsyncConnection, published_before: datetime) -> None:
    await conn.execute(delete(outbox).where(outbox.c.published_at < published_before))


async def add_timers(conn: AsyncConnection, armed: list[Timer]) -> None:
    """Arm timers; one armed before (same id), pending or fired, is left as it is."""
    if armed:
        await conn.execute(
            ADD_TIMERS,
            [
                {
                    "timer_id": t.timer_id,
                    "tenant": t.tenant,
                    "kind": t.kind.value,
                    "due_at": t.due_at,
                    "case_id": t.case_id,
                    "crisis_id": t.crisis_id,
                    "clock": t.clock.value if t.clock else None,
                    "timer": t.model_dump(mode="json"),
                    "fired_at": None,
                }
                for t in armed
            ],
        )


async def cancel_timers(conn: AsyncConnection, case_id: uuid.UUID, clock: str) -> None:
    """Drop a stopped clock's pending timers. One that another router holds right now is left:
    it deferred (this transaction holds the case) or finds its clock stopped, so it is a no-op;
    waiting for it could deadlock two routers cancelling each other's held timers."""
    pending = (
        select(timers.c.timer_id)
        .where(
            and_(timers.c.case_id == case_id, timers.c.clock == clock, timers.c.fired_at.is_(None))
        )
        .with_for_update(skip_locked=True)
    )
    await conn.execute(delete(timers).where(timers.c.timer_id.in_(pending.scalar_subquery())))


async def take_due_timers(conn: AsyncConnection, now: datetime, limit: int) -> list[Timer]:
    """The oldest due timers of every tenant (each carries its tenant), locked for this
    transaction; other routers skip them."""
    result = await conn.execute(
        select(timers.c.timer)
        .where(and_(timers.c.fired_at.is_(None), timers.c.due_at <= now))
        .order_by(timers.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [Timer.model_validate(row[0]) for row in result]


async def mark_timers_fired(
    conn: AsyncConnection, timer_ids: list[uuid.UUID], now: datetime
) -> None:
    if timer_ids:
        await conn.execute(
            update(timers).where(timers.c.timer_id.in_(timer_ids)).values(fired_at=now)
        )


async def prune_timers(conn: AsyncConnection, fired_before: datetime) -> None:
    await conn.execute(delete(timers).where(timers.c.fired_at < fired_before))


async def open_crises_for_update(
    conn: AsyncConnection, tenant: str, topic_keys: list[str]
) -> dict[str, Crisis]:
    if not topic_keys:
        return {}
    result = await conn.execute(
        select(crises.c.document)
        .where(
            and_(
                crises.c.tenant == tenant,
                crises.c.topic_key.in_(topic_keys),
                crises.c.closed_at.is_(None),
            )
        )
        .order_by(crises.c.topic_key)
        .with_for_update()
    )
    found = [Crisis.model_validate(row[0]) for row in result]
    return {c.topic_key: c for c in found}


async def crises_by_id_for_update(
    conn: AsyncConnection, crisis_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, Crisis], set[uuid.UUID]]:
    """Like `cases_by_id_for_update`: (the crises locked, the ids another transaction holds)."""
    if not crisis_ids:
        return {}, set()
    result = await conn.execute(
        select(crises.c.document)
        .where(crises.c.crisis_id.in_(crisis_ids))
        .with_for_update(skip_locked=True)
    )
    locked = {c.crisis_id: c for c in (Crisis.model_validate(row[0]) for row in result)}
    return locked, await _held_elsewhere(conn, crises.c.crisis_id, crisis_ids, locked)


async def upsert_crises(conn: AsyncConnection, changed: list[Crisis]) -> None:
    """Save crises. A second crisis opened on the same topic by a concurrent batch is dropped
    (one open crisis per topic): the first one stands."""
    for crisis in changed:
        row = {
            "crisis_id": crisis.crisis_id,
            "tenant": crisis.tenant,
            "topic_key": crisis.topic_key,
            "opened_at": crisis.opened_at,
            "closed_at": crisis.closed_at,
            "document": crisis.model_dump(mode="json"),
        }
        await conn.execute(insert(crises).values(row).on_conflict_do_nothing())
        await conn.execute(
            update(crises)
            .where(crises.c.crisis_id == crisis.crisis_id)
            .values(closed_at=crisis.closed_at, document=row["document"])
        )


async def customer_mentions_between(
    conn: AsyncConnection, since: datetime, until: datetime, limit: int
) -> list[tuple[MentionClassified, Routing | None]]:
    """Stored customer mentions written in [since, until), oldest first, with their routing."""
    result = await conn.execute(
        select(case_mentions.c.mention, case_mentions.c.classification, case_mentions.c.routing)
        .where(
            and_(
                case_mentions.c.created_at >= since,
                case_mentions.c.created_at < until,
                case_mentions.c.classification.is_not(None),
            )
        )
        .order_by(case_mentions.c.created_at)
        .limit(limit)
    )
    return [
        (
            MentionClassified(
                mention=Mention.model_validate(row.mention),
                classification=Classification.model_validate(row.classification),
            ),
            Routing.model_validate(row.routing) if row.routing is not None else None,
        )
        for row in result
    ]


async def add_case_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(ADD_CASE_EVENTS, rows)


@dataclass(frozen=True)
class CaseFilter:
    queue: str | None = None
    status: str | None = None
    priority: str | None = None
    channel: str | None = None
    language: str | None = None
    sla_state: str | None = None
    updated_since: datetime | None = None
    # The queues the caller's key sees (None: all).
    queues: frozenset[str] | None = None


@dataclass(frozen=True)
class CaseListing:
    case: Case
    sla_state: str
    updated_at: datetime


async def list_cases(
    conn: AsyncConnection,
    tenant: str,
    where: CaseFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[CaseListing]:
    """The tenant's cases, most recently changed first, after the keyset `after`."""
    conditions = [cases.c.tenant == tenant]
    for name in ("queue", "status", "priority", "channel", "language", "sla_state"):
        value = getattr(where, name)
        if value is not None:
            conditions.append(cases.c[name] == value)
    if where.updated_since is not None:
        conditions.append(cases.c.updated_at >= where.updated_since)
    if where.queues is not None:
        conditions.append(cases.c.queue.in_(sorted(where.queues)))
    if after is not None:
        conditions.append(tuple_(cases.c.updated_at, cases.c.case_id) < tuple_(*after))
    result = await conn.execute(
        select(*CASE_COLUMNS, cases.c.document, cases.c.sla_state, cases.c.updated_at)
        .where(and_(*conditions))
        .order_by(cases.c.updated_at.desc(), cases.c.case_id.desc())
        .limit(limit)
    )
    return [CaseListing(_case(row), row.sla_state, row.updated_at) for row in result]


async def case_for_update(conn: AsyncConnection, tenant: str, case_id: uuid.UUID) -> Case | None:
    """Lock one case for an agent's action (waiting for a batch or timer holding it)."""
    result = await conn.execute(
        select(*CASE_COLUMNS, cases.c.document)
        .where(and_(cases.c.tenant == tenant, cases.c.case_id == case_id))
        .with_for_update()
    )
    row = result.first()
    return _case(row) if row else None


async def case_by_id(conn: AsyncConnection, tenant: str, case_id: uuid.UUID) -> CaseListing | None:
    result = await conn.execute(
        select(*CASE_COLUMNS, cases.c.document, cases.c.sla_state, cases.c.updated_at).where(
            and_(cases.c.tenant == tenant, cases.c.case_id == case_id)
        )
    )
    row = result.first()
    return CaseListing(_case(row), row.sla_state, row.updated_at) if row else None


@dataclass(frozen=True)
class StoredMention:
    mention: dict[str, Any]
    classification: dict[str, Any] | None
    routing: dict[str, Any] | None


async def mentions_of_case(
    conn: AsyncConnection, case_id: uuid.UUID, limit: int
) -> list[StoredMention]:
    """The case's conversation, oldest first (customer mentions and the brand's replies)."""
    result = await conn.execute(
        select(case_mentions.c.mention, case_mentions.c.classification, case_mentions.c.routing)
        .where(case_mentions.c.case_id == case_id)
        .order_by(case_mentions.c.created_at, case_mentions.c.mention_id)
        .limit(limit)
    )
    return _typed(result, StoredMention)


@dataclass(frozen=True)
class CaseHistoryEntry:
    event_id: uuid.UUID
    type: str
    occurred_at: datetime
    detail: dict[str, Any]


async def history_of_case(
    conn: AsyncConnection, case_id: uuid.UUID, limit: int
) -> list[CaseHistoryEntry]:
    result = await conn.execute(
        select(
            case_events.c.event_id,
            case_events.c.type,
            case_events.c.occurred_at,
            case_events.c.detail,
        )
        .where(case_events.c.case_id == case_id)
        .order_by(case_events.c.occurred_at, case_events.c.event_id)
        .limit(limit)
    )
    return _typed(result, CaseHistoryEntry)


@dataclass(frozen=True)
class DeliveryLog:
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


async def endpoint_exists(conn: AsyncConnection, tenant: str, endpoint_id: uuid.UUID) -> bool:
    result = await conn.execute(
        select(webhook_endpoints.c.endpoint_id).where(
            and_(
                webhook_endpoints.c.tenant == tenant, webhook_endpoints.c.endpoint_id == endpoint_id
            )
        )
    )
    return result.first() is not None


async def deliveries_of(
    conn: AsyncConnection, endpoint_id: uuid.UUID, status: str | None, limit: int
) -> list[tuple[DeliveryLog, list[Attempt]]]:
    """An endpoint's latest deliveries, newest first, each with its attempts (oldest first)."""
    condition: ColumnElement[bool] = webhook_deliveries.c.endpoint_id == endpoint_id
    if status is not None:
        condition = and_(condition, webhook_deliveries.c.status == status)
    result = await conn.execute(
        select(webhook_deliveries)
        .where(condition)
        .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.delivery_id)
        .limit(limit)
    )
    deliveries = _typed(result, DeliveryLog)
    if not deliveries:
        return []
    result = await conn.execute(
        select(webhook_attempts)
        .where(webhook_attempts.c.delivery_id.in_([d.delivery_id for d in deliveries]))
        .order_by(webhook_attempts.c.attempted_at)
    )
    attempts: dict[uuid.UUID, list[Attempt]] = {}
    for row in result:
        attempts.setdefault(row.delivery_id, []).append(_typed([row], Attempt)[0])
    return [(d, attempts.get(d.delivery_id, [])) for d in deliveries]


async def redeliver(
    conn: AsyncConnection,
    tenant: str,
    now: datetime,
    *,
    delivery_id: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> int:
    """Deliver again (same `webhook-id`): one delivery, or an endpoint's since a time. How many."""
    own = select(webhook_endpoints.c.endpoint_id).where(webhook_endpoints.c.tenant == tenant)
    condition: ColumnElement[bool] = webhook_deliveries.c.endpoint_id.in_(own.scalar_subquery())
    if delivery_id is not None:
        condition = and_(condition, webhook_deliveries.c.delivery_id == delivery_id)
    if endpoint_id is not None:
        condition = and_(condition, webhook_deliveries.c.endpoint_id == endpoint_id)
    if since is not None:
        condition = and_(condition, webhook_deliveries.c.created_at >= since)
    result = await conn.execute(
        update(webhook_deliveries)
        .where(condition)
        .values(status="pending", next_attempt_at=now, lease_token=None)
    )
    return int(result.rowcount)


async def delete_endpoint(conn: AsyncConnection, tenant: str, endpoint_id: uuid.UUID) -> bool:
    """Remove an endpoint with its deliveries and their attempts."""
    if not await endpoint_exists(conn, tenant, endpoint_id):
        return False
    deliveries = select(webhook_deliveries.c.delivery_id).where(
        webhook_deliveries.c.endpoint_id == endpoint_id
    )
    await conn.execute(
        delete(webhook_attempts).where(
            webhook_attempts.c.delivery_id.in_(deliveries.scalar_subquery())
        )
    )
    await conn.execute(
        delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    )
    await conn.execute(
        delete(webhook_endpoints).where(webhook_endpoints.c.endpoint_id == endpoint_id)
    )
    return True


async def rotate_secret(
    conn: AsyncConnection,
    tenant: str,
    endpoint_id: uuid.UUID,
    ciphertext: str,
    previous_until: datetime,
) -> bool:
    """The new secret signs from now on; the current one keeps signing beside it until
    `previous_until`."""
    result = await conn.execute(
        update(webhook_endpoints)
        .where(
            and_(
                webhook_endpoints.c.tenant == tenant, webhook_endpoints.c.endpoint_id == endpoint_id
            )
        )
        .values(
            previous_secret_ciphertext=webhook_endpoints.c.secret_ciphertext,
            previous_secret_until=previous_until,
            secret_ciphertext=ciphertext,
        )
    )
    return bool(result.rowcount == 1)


# -- agents and assignment ------------------------------------------------------------------

agents = Table(
    "router_agents",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("agent_id", String(128), primary_key=True),
    # The definition written through the API (NULL: the playbook's agent of this id).
    Column("profile", JSONB),
    # Set through the API; NULL: the definition's.
    Column("presence", String(16)),
    Column("last_assigned_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# pg_advisory_xact_lock(space, hashtext(tenant)): one assignment at a time per tenant, so loads
# read for a decision are still true when it commits (no agent over capacity, no case twice).
ASSIGNMENT_LOCKS = 0x5C5_C2


async def lock_assignment(conn: AsyncConnection, tenant: str) -> None:
    """Taken after the cases a transaction changes: its holder never waits for a case (`next`
    skips locked ones), so it cannot deadlock with a batch holding cases."""
    await lock_keys(conn, ASSIGNMENT_LOCKS, [tenant])


async def stored_agents(conn: AsyncConnection, tenant: str) -> list[StoredAgent]:
    result = await conn.execute(select(agents).where(agents.c.tenant == tenant))
    return [
        StoredAgent(
            agent_id=row.agent_id,
            profile=AgentProfile.model_validate(row.profile) if row.profile else None,
            presence=Presence(row.presence) if row.presence else None,
            last_assigned_at=row.last_assigned_at,
        )
        for row in result
    ]


async def agent_loads(conn: AsyncConnection, tenant: str) -> dict[str, int]:
    """Open (or responded) cases per assignee."""
    result = await conn.execute(
        select(cases.c.assignee, func.count())
        .where(
            and_(
                cases.c.tenant == tenant,
                cases.c.assignee.is_not(None),
                cases.c.status.in_([s.value for s in LOADED]),
            )
        )
        .group_by(cases.c.assignee)
    )
    return {row[0]: int(row[1]) for row in result}


def _upsert_agent(tenant: str, agent_id: str, **values: Any) -> Any:
    statement = insert(agents).values(tenant=tenant, agent_id=agent_id, **values)
    return statement.on_conflict_do_update(
        index_elements=[agents.c.tenant, agents.c.agent_id],
        set_={**values, "updated_at": func.now()},
    )


async def put_agent(
    conn: AsyncConnection, tenant: str, agent_id: str, profile: AgentProfile
) -> None:
    """Write the agent's definition; its presence is the definition's from now on."""
    await conn.execute(
        _upsert_agent(tenant, agent_id, profile=profile.model_dump(mode="json"), presence=None)
    )


async def set_presence(
    conn: AsyncConnection, tenant: str, agent_id: str, presence: Presence
) -> None:
    await conn.execute(_upsert_agent(tenant, agent_id, presence=presence.value))


async def mark_assigned(conn: AsyncConnection, tenant: str, latest: dict[str, datetime]) -> None:
    for agent_id, at in sorted(latest.items()):
        statement = insert(agents).values(tenant=tenant, agent_id=agent_id, last_assigned_at=at)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[agents.c.tenant, agents.c.agent_id],
                set_={
                    "last_assigned_at": func.greatest(
                        agents.c.last_assigned_at, statement.excluded.last_assigned_at
                    )
                },
            )
        )


async def unassigned_cases_for_update(
    conn: AsyncConnection, tenant: str, languages: list[str], queues: list[str], limit: int
) -> list[Case]:
    """Open unassigned cases an agent of these languages and queues might take (empty queues:
    any), earliest first-response deadline first, locked; cases another transaction holds are
    skipped. The core ranks them by their actual deadline."""
    primary = func.split_part(func.lower(cases.c.language), "-", 1)
    conditions = [
        cases.c.tenant == tenant,
        cases.c.status == "open",
        cases.c.assignee.is_(None),
        primary.in_([*languages, "", "und"]),
    ]
    if queues:
        conditions.append(cases.c.queue.in_(queues))
    result = await conn.execute(
        select(*CASE_COLUMNS, cases.c.document)
        .where(and_(*conditions))
        .order_by(cases.c.first_response_due_at, cases.c.case_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_case(row) for row in result]
