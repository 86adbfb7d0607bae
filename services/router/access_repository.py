"""API keys (only their tokens' hashes) and the audit log: who did what to which case, key or
webhook endpoint, when, and how it ended."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from services.router.core.access import Caller, Scope
from shared.db import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("scope", String(16), nullable=False),
    # Only cases of these queues (NULL: every queue of the tenant).
    Column("queues", ARRAY(String(64))),
    # Hex SHA-256 of the token; the token itself is never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    # The token before the last rotation, accepted until `previous_token_until` (an overlap).
    Column("previous_token_hash", String(64), index=True),
    Column("previous_token_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # Who: the key (NULL: the bootstrap key) and the agent the request named.
    Column("key_id", Uuid),
    Column("key_name", String(128), nullable=False),
    Column("actor", String(128)),
    # What: e.g. case.assign, api_key.rotate, webhook_endpoint.delete; and on which id.
    Column("operation", String(64), nullable=False),
    Column("target_id", Uuid),
    Column("status_code", Integer, nullable=False),
    Column("detail", JSONB, nullable=False),
    Index("ix_audit_log_tenant_at", "tenant", "at", "audit_id"),
    Index("ix_audit_log_target", "target_id"),
    Index("ix_audit_log_key", "key_id"),
)


# -- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    key_id: uuid.UUID
    tenant: str
    name: str
    scope: str
    queues: list[str] | None
    created_at: datetime
    rotated_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    previous_token_until: datetime | None


KEY_COLUMNS = [api_keys.c[name] for name in ApiKey.__dataclass_fields__]


async def add_key(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(api_keys).values(**row))


async def caller_for(conn: AsyncConnection, hashed: str, now: datetime) -> Caller | None:
    """The live key whose token (or previous token, within its overlap) has this hash, marked
    as used now; None for an unknown, revoked or rotated-out token."""
    result = await conn.execute(
        update(api_keys)
        .where(
            and_(
                api_keys.c.revoked_at.is_(None),
                or_(
                    api_keys.c.token_hash == hashed,
                    and_(
                        api_keys.c.previous_token_hash == hashed,
                        api_keys.c.previous_token_until > now,
                    ),
                ),
            )
        )
        .values(last_used_at=now)
        .returning(
            api_keys.c.key_id,
            api_keys.c.tenant,
            api_keys.c.name,
            api_keys.c.scope,
            api_keys.c.queues,
        )
    )
    row = result.first()
    if row is None:
        return None
    return Caller(
        tenant=row.tenant,
        scope=Scope(row.scope),
        key_id=row.key_id,
        key_name=row.name,
        queues=frozenset(row.queues) if row.queues is not None else None,
    )


def _owned(key_id: uuid.UUID, tenant: str | None) -> ColumnElement[bool]:
    """The key `key_id`, of `tenant` (None: of any tenant, for the bootstrap key)."""
    condition: ColumnElement[bool] = api_keys.c.key_id == key_id
    return condition if tenant is None else and_(condition, api_keys.c.tenant == tenant)


async def key_by_id(conn: AsyncConnection, key_id: uuid.UUID, tenant: str | None) -> ApiKey | None:
    result = await conn.execute(select(*KEY_COLUMNS).where(_owned(key_id, tenant)))
    row = result.first()
    return ApiKey(**row._mapping) if row else None


async def keys_of(conn: AsyncConnection, tenant: str | None) -> list[ApiKey]:
    """A tenant's keys (None: every tenant's), oldest first, revoked ones included."""
    query = select(*KEY_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if tenant is not None:
        query = query.where(api_keys.c.tenant == tenant)
    return [ApiKey(**row._mapping) for row in await conn.execute(query)]


async def rotate_key(
    conn: AsyncConnection,
    key_id: uuid.UUID,
    new_hash: str,
    now: datetime,
    previous_until: datetime | None,
) -> None:
    """The new token opens from now on; the current one only until `previous_until` (None: not
    at all). A token from before an earlier rotation stops at once."""
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id)
        .values(
            previous_token_hash=api_keys.c.token_hash if previous_until is not None else None,
            previous_token_until=previous_until,
            token_hash=new_hash,
            rotated_at=now,
        )
    )


async def revoke_key(conn: AsyncConnection, key_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        update(api_keys)
        .where(and_(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)))
        .values(revoked_at=now)
    )


# -- audit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    audit_id: uuid.UUID
    tenant: str
    at: datetime
    key_id: uuid.UUID | None
    key_name: str
    actor: str | None
    operation: str
    target_id: uuid.UUID | None
    status_code: int
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditFilter:
    case_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    since: datetime | None = None


async def add_audit(conn: AsyncConnection, entry: AuditEntry) -> None:
    await conn.execute(insert(audit_log).values(**vars(entry)))


async def audit_of(
    conn: AsyncConnection,
    tenant: str,
    where: AuditFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AuditEntry]:
    """The tenant's audit entries, newest first, after the keyset `after`."""
    conditions = [audit_log.c.tenant == tenant]
    if where.case_id is not None:
        conditions += [audit_log.c.target_id == where.case_id, audit_log.c.operation.like("case.%")]
    if where.key_id is not None:
        conditions.append(audit_log.c.key_id == where.key_id)
    if where.since is not None:
        conditions.append(audit_log.c.at >= where.since)
    if after is not None:
        conditions.append(tuple_(audit_log.c.at, audit_log.c.audit_id) < tuple_(*after))
    result = await conn.execute(
        select(audit_log)
        .where(and_(*conditions))
        .order_by(audit_log.c.at.desc(), audit_log.c.audit_id.desc())
        .limit(limit)
    )
    return [AuditEntry(**row._mapping) for row in result]
