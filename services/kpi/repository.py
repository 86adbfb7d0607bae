"""KPI tables: one row of facts per case, kept current from case events, and the ids of the
events already applied (idempotent consumer)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Uuid,
    case,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kpi.core import CaseFacts
from shared.db import metadata

case_facts = Table(
    "kpi_case_facts",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("priority", String(2), nullable=False),
    Column("team", String(64), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, index=True),
    Column("first_response_due_at", DateTime(timezone=True), nullable=False),
    Column("first_response_at", DateTime(timezone=True)),
    Column("mention_count", Integer, nullable=False),
    # First handoff out of the social channel; how the case stands as of event `sequence`.
    Column("handed_off_at", DateTime(timezone=True)),
    Column("resolution", String(16)),
    Column("sequence", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

applied_events = Table(
    "kpi_applied_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


async def claim_events(conn: AsyncConnection, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Record event ids as applied; returns those not applied before (the ones to apply)."""
    result = await conn.execute(
        insert(applied_events)
        .values([{"event_id": event_id} for event_id in event_ids])
        .on_conflict_do_nothing()
        .returning(applied_events.c.event_id)
    )
    return {row[0] for row in result}


async def merge_facts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Upsert facts so that order does not matter: priority only rises, first answer and first
    handoff are kept, and the resolution is the one of the case's latest event that tells."""
    if not rows:
        return
    statement = insert(case_facts).values(rows)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[case_facts.c.case_id],
        set_={
            "priority": func.least(case_facts.c.priority, excluded.priority),
            "team": excluded.team,
            "first_response_due_at": func.least(
                case_facts.c.first_response_due_at, excluded.first_response_due_at
            ),
            "first_response_at": func.coalesce(
                case_facts.c.first_response_at, excluded.first_response_at
            ),
            "mention_count": func.greatest(case_facts.c.mention_count, excluded.mention_count),
            "handed_off_at": func.least(case_facts.c.handed_off_at, excluded.handed_off_at),
            "resolution": case(
                (
                    excluded.sequence >= case_facts.c.sequence,
                    func.coalesce(excluded.resolution, case_facts.c.resolution),
                ),
                else_=case_facts.c.resolution,
            ),
            "sequence": func.greatest(case_facts.c.sequence, excluded.sequence),
            "updated_at": func.now(),
        },
    )
    await conn.execute(statement)


async def facts_since(conn: AsyncConnection, since: datetime) -> list[tuple[str, CaseFacts]]:
    """Every tenant's cases opened since `since`, each with its tenant."""
    result = await conn.execute(
        select(
            case_facts.c.tenant,
            case_facts.c.case_id,
            case_facts.c.channel,
            case_facts.c.priority,
            case_facts.c.team,
            case_facts.c.opened_at,
            case_facts.c.first_response_due_at,
            case_facts.c.first_response_at,
            case_facts.c.handed_off_at,
            case_facts.c.resolution,
        ).where(case_facts.c.opened_at >= since)
    )
    return [
        (row.tenant, CaseFacts.model_validate({**row._mapping, "case_id": str(row.case_id)}))
        for row in result
    ]


async def forget_cases(conn: AsyncConnection, case_ids: list[uuid.UUID]) -> None:
    if case_ids:
        await conn.execute(delete(case_facts).where(case_facts.c.case_id.in_(case_ids)))


async def forget_applied(conn: AsyncConnection, older_than: datetime) -> None:
    await conn.execute(delete(applied_events).where(applied_events.c.applied_at < older_than))
