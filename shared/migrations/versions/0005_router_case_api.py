"""router case API: SLA state column, keyset index, case event history

Revision ID: 0005
Revises: 0004

Agent desktops list cases by queue, status, priority, SLA state and last change, page by page
(keyset on updated_at, case_id), and read a case's event history after the outbox has pruned it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "router_cases",
        sa.Column("sla_state", sa.String(length=16), server_default="none", nullable=False),
    )
    op.create_index(
        "ix_router_cases_tenant_updated", "router_cases", ["tenant", "updated_at", "case_id"]
    )
    op.create_table(
        "router_case_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_router_case_events")),
    )
    op.create_index("ix_router_case_events_case", "router_case_events", ["case_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("router_case_events")
    op.drop_index("ix_router_cases_tenant_updated", table_name="router_cases")
    op.drop_column("router_cases", "sla_state")
