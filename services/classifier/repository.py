"""Crisis velocity state in PostgreSQL: negative mentions per topic and time bucket, shared by
every classifier replica and kept across restarts, so a burst split over partitions is still
seen as one; and the mentions already counted, so a redelivered one never counts twice.

A batch reads at most (its topics x buckets in its time span) rows, however big the storm.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
    and_,
    delete,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.classifier.core.velocity import CountedSignal, VelocityCounts, VelocityWindow
from shared.db import metadata

velocity_buckets = Table(
    "classifier_velocity_buckets",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("topic_key", String(256), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Column("negatives", Integer, nullable=False),
    PrimaryKeyConstraint("tenant", "topic_key", "bucket_start"),
    Index("ix_classifier_velocity_buckets_bucket_start", "bucket_start"),
)

velocity_counted = Table(
    "classifier_velocity_counted",
    metadata,
    Column("mention_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("topic_key", String(256), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Index("ix_classifier_velocity_counted_bucket_start", "bucket_start"),
)


async def load_velocity(
    conn: AsyncConnection,
    tenant: str,
    window: VelocityWindow,
    topics: Sequence[str],
    mention_ids: Sequence[uuid.UUID],
    earliest: datetime,
    latest: datetime,
) -> VelocityCounts:
    """The buckets a batch of mentions between `earliest` and `latest` can count, and which of
    its mentions are already counted (a redelivery)."""
    buckets = await conn.execute(
        select(
            velocity_buckets.c.topic_key,
            velocity_buckets.c.bucket_start,
            velocity_buckets.c.negatives,
        ).where(
            and_(
                velocity_buckets.c.tenant == tenant,
                velocity_buckets.c.topic_key.in_(topics),
                velocity_buckets.c.bucket_start
                >= window.as_datetime(window.first_bucket(earliest)),
                velocity_buckets.c.bucket_start <= window.as_datetime(window.bucket_of(latest)),
            )
        )
    )
    counted = await conn.execute(
        select(
            velocity_counted.c.mention_id,
            velocity_counted.c.topic_key,
            velocity_counted.c.bucket_start,
        ).where(
            and_(
                velocity_counted.c.tenant == tenant, velocity_counted.c.mention_id.in_(mention_ids)
            )
        )
    )
    return VelocityCounts(
        window,
        {(row.topic_key, window.as_bucket(row.bucket_start)): row.negatives for row in buckets},
        [
            CountedSignal(row.mention_id, row.topic_key, window.as_bucket(row.bucket_start))
            for row in counted
        ],
    )


async def record_velocity(
    conn: AsyncConnection, tenant: str, signals: Sequence[CountedSignal]
) -> None:
    """Add the signals to their buckets, each mention once even if another replica or an
    earlier attempt of this batch already did: only ids newly claimed are added."""
    if not signals:
        return
    claimed = await conn.execute(
        insert(velocity_counted)
        .values(
            [
                {
                    "mention_id": signal.mention_id,
                    "tenant": tenant,
                    "topic_key": signal.topic,
                    "bucket_start": VelocityWindow.as_datetime(signal.bucket),
                }
                for signal in signals
            ]
        )
        .on_conflict_do_nothing()
        .returning(velocity_counted.c.topic_key, velocity_counted.c.bucket_start)
    )
    increments = Counter((row.topic_key, row.bucket_start) for row in claimed)
    if not increments:
        return
    statement = insert(velocity_buckets).values(
        [
            {"tenant": tenant, "topic_key": topic, "bucket_start": start, "negatives": count}
            # one order for every replica, so concurrent upserts cannot deadlock
            for (topic, start), count in sorted(increments.items())
        ]
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant", "topic_key", "bucket_start"],
            set_={"negatives": velocity_buckets.c.negatives + statement.excluded.negatives},
        )
    )


async def prune(conn: AsyncConnection, older_than: datetime) -> None:
    await conn.execute(delete(velocity_buckets).where(velocity_buckets.c.bucket_start < older_than))
    await conn.execute(delete(velocity_counted).where(velocity_counted.c.bucket_start < older_than))
