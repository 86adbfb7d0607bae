"""classifier velocity in time buckets

Revision ID: 0003
Revises: 0002

Crisis velocity is counted per topic in time buckets instead of one row per negative mention,
so counting costs the same in a storm as in calm. The old per-mention rows are not carried
over: they only ever mattered for the trailing window (10 minutes by default).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classifier_velocity_buckets",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("topic_key", sa.String(length=256), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("negatives", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "topic_key", "bucket_start", name=op.f("pk_classifier_velocity_buckets")
        ),
    )
    op.create_index(
        "ix_classifier_velocity_buckets_bucket_start",
        "classifier_velocity_buckets",
        ["bucket_start"],
    )
    op.create_table(
        "classifier_velocity_counted",
        sa.Column("mention_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("topic_key", sa.String(length=256), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mention_id", name=op.f("pk_classifier_velocity_counted")),
    )
    op.create_index(
        "ix_classifier_velocity_counted_bucket_start",
        "classifier_velocity_counted",
        ["bucket_start"],
    )
    op.drop_index("ix_classifier_negative_signals_topic", table_name="classifier_negative_signals")
    op.drop_table("classifier_negative_signals")


def downgrade() -> None:
    op.create_table(
        "classifier_negative_signals",
        sa.Column("mention_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("topic_key", sa.String(length=256), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mention_id", name=op.f("pk_classifier_negative_signals")),
    )
    op.create_index(
        "ix_classifier_negative_signals_topic",
        "classifier_negative_signals",
        ["tenant", "topic_key", "occurred_at"],
    )
    op.drop_index(
        "ix_classifier_velocity_counted_bucket_start", table_name="classifier_velocity_counted"
    )
    op.drop_table("classifier_velocity_counted")
    op.drop_index(
        "ix_classifier_velocity_buckets_bucket_start", table_name="classifier_velocity_buckets"
    )
    op.drop_table("classifier_velocity_buckets")
