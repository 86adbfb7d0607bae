"""router playbook: case documents and generations, timers, crises, routing traces

Revision ID: 0004
Revises: 0003

A case is stored as its whole document (clocks, tags, escalation) beside the columns that are
queried; a conversation that comes back after its case was resolved opens generation 1, 2, ...
The SLA timers wait in router_timers until a router takes them (FOR UPDATE SKIP LOCKED); the
partial index holds only pending ones, so fired timers cost the firing nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("router_cases", "team", new_column_name="queue")
    op.add_column(
        "router_cases",
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("router_cases", sa.Column("resolved_at", sa.DateTime(timezone=True)))
    op.add_column("router_cases", sa.Column("crisis_id", sa.Uuid()))
    op.add_column("router_cases", sa.Column("document", postgresql.JSONB()))
    op.drop_constraint("uq_router_cases_tenant", "router_cases", type_="unique")
    op.create_unique_constraint(
        "uq_router_cases_conversation_generation",
        "router_cases",
        ["tenant", "conversation_key", "generation"],
    )
    op.add_column("router_case_mentions", sa.Column("routing", postgresql.JSONB()))
    op.create_table(
        "router_timers",
        sa.Column("timer_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_id", sa.Uuid()),
        sa.Column("crisis_id", sa.Uuid()),
        sa.Column("clock", sa.String(length=32)),
        sa.Column("timer", postgresql.JSONB(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("timer_id", name=op.f("pk_router_timers")),
    )
    op.create_index(
        "ix_router_timers_pending_due",
        "router_timers",
        ["due_at"],
        postgresql_where=sa.text("fired_at IS NULL"),
    )
    op.create_index(
        "ix_router_timers_pending_case",
        "router_timers",
        ["case_id", "clock"],
        postgresql_where=sa.text("fired_at IS NULL"),
    )
    op.create_index(
        "ix_router_timers_fired",
        "router_timers",
        ["fired_at"],
        postgresql_where=sa.text("fired_at IS NOT NULL"),
    )
    op.create_table(
        "router_crises",
        sa.Column("crisis_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("topic_key", sa.String(length=256), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("crisis_id", name=op.f("pk_router_crises")),
    )
    # One open crisis per topic.
    op.create_index(
        "ix_router_crises_open_topic",
        "router_crises",
        ["tenant", "topic_key"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("router_crises")
    op.drop_table("router_timers")
    op.drop_column("router_case_mentions", "routing")
    op.drop_constraint("uq_router_cases_conversation_generation", "router_cases", type_="unique")
    op.create_unique_constraint(
        "uq_router_cases_tenant", "router_cases", ["tenant", "conversation_key"]
    )
    for column in ("document", "crisis_id", "resolved_at", "generation"):
        op.drop_column("router_cases", column)
    op.alter_column("router_cases", "queue", new_column_name="team")
