"""The dedupe window: which mention ids were already published, kept in PostgreSQL so every
ingest replica and every restart agrees."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, String, Table, Uuid, and_, delete, or_, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import metadata

seen_mentions = Table(
    "ingest_seen_mentions",
    metadata,
    Column("mention_id", Uuid, primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("platform_id", String(512), nullable=False),
    Column("state", String(16), nullable=False),  # pending | published
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), index=True),
)


async def relax_commit(conn: AsyncConnection) -> None:
    """Do not wait for the WAL flush in this transaction.

    Safe here: the broker's ack, not this table, is what makes a mention durable. A dedupe row
    lost in a database crash can only let a redelivery through as a duplicate, which consumers
    drop by event id. It halves the latency of every accepted request.
    """
    await conn.execute(text("SET LOCAL synchronous_commit = off"))


async def claim(
    conn: AsyncConnection,
    items: list[tuple[uuid.UUID, str, str]],
    now: datetime,
    claim_timeout: timedelta,
) -> set[uuid.UUID]:
    """Claim (mention_id, channel, platform_id) rows for publishing; returns the ids we own.

    A row already published, or claimed by a request still in flight, is not returned. A claim
    older than `claim_timeout` is presumed abandoned (the process died before marking it
    published) and is taken over.
    """
    if not items:
        return set()
    values = insert(seen_mentions).values(
        [
            {
                "mention_id": mention_id,
                "channel": channel,
                "platform_id": platform_id,
                "state": "pending",
                "claimed_at": now,
            }
            for mention_id, channel, platform_id in items
        ]
    )
    statement = values.on_conflict_do_update(
        index_elements=[seen_mentions.c.mention_id],
        set_={"claimed_at": now},
        where=and_(
            seen_mentions.c.state == "pending",
            seen_mentions.c.claimed_at < now - claim_timeout,
        ),
    ).returning(seen_mentions.c.mention_id)
    result = await conn.execute(statement)
    return {row[0] for row in result}


async def states(conn: AsyncConnection, mention_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    result = await conn.execute(
        seen_mentions.select()
        .with_only_columns(seen_mentions.c.mention_id, seen_mentions.c.state)
        .where(seen_mentions.c.mention_id.in_(mention_ids))
    )
    return {row.mention_id: row.state for row in result}


async def mark_published(
    conn: AsyncConnection, mention_ids: list[uuid.UUID], now: datetime
) -> None:
    await conn.execute(
        update(seen_mentions)
        .where(seen_mentions.c.mention_id.in_(mention_ids))
        .values(state="published", published_at=now)
    )


async def release(conn: AsyncConnection, mention_ids: list[uuid.UUID]) -> None:
    """Give up claims whose publish failed, so the sender's retry is not taken for a duplicate."""
    await conn.execute(
        delete(seen_mentions).where(
            and_(seen_mentions.c.mention_id.in_(mention_ids), seen_mentions.c.state == "pending")
        )
    )


async def prune(conn: AsyncConnection, older_than: datetime) -> int:
    result = await conn.execute(
        delete(seen_mentions).where(
            or_(
                seen_mentions.c.published_at < older_than,
                and_(seen_mentions.c.state == "pending", seen_mentions.c.claimed_at < older_than),
            )
        )
    )
    return int(result.rowcount or 0)
