"""Crisis velocity state: recent negative mentions per topic, shared by every classifier
replica and kept across restarts, so a burst split over partitions is still seen as one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime, Index, String, Table, Uuid, and_, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import metadata

negative_signals = Table(
    "classifier_negative_signals",
    metadata,
    Column("mention_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("topic_key", String(256), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("ix_classifier_negative_signals_topic", "tenant", "topic_key", "occurred_at"),
)


async def recent_signals(
    conn: AsyncConnection, tenant: str, topic_keys: list[str], since: datetime
) -> list[tuple[uuid.UUID, str, datetime]]:
    result = await conn.execute(
        select(
            negative_signals.c.mention_id,
            negative_signals.c.topic_key,
            negative_signals.c.occurred_at,
        ).where(
            and_(
                negative_signals.c.tenant == tenant,
                negative_signals.c.topic_key.in_(topic_keys),
                negative_signals.c.occurred_at >= since,
            )
        )
    )
    return [(row.mention_id, row.topic_key, row.occurred_at) for row in result]


async def add_signals(
    conn: AsyncConnection, tenant: str, rows: list[tuple[uuid.UUID, str, datetime]]
) -> None:
    if rows:
        await conn.execute(
            insert(negative_signals)
            .values(
                [
                    {"mention_id": m, "tenant": tenant, "topic_key": k, "occurred_at": t}
                    for m, k, t in rows
                ]
            )
            .on_conflict_do_nothing()
        )


async def prune(conn: AsyncConnection, older_than: datetime) -> None:
    await conn.execute(delete(negative_signals).where(negative_signals.c.occurred_at < older_than))
