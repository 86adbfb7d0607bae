"""agents and assignment: the agents a router assigns cases to, and each case's assignee

Revision ID: 0009
Revises: 0008

`router_agents` holds what the API wrote about an agent (its definition, its presence) and when
it was last given a case; agents declared only in the playbook get a row for the last two.
`router_cases.assignee` copies the case document's assignee so loads and unassigned cases are
found by index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "router_agents",
        sa.Column("tenant", sa.String(length=64), primary_key=True),
        sa.Column("agent_id", sa.String(length=128), primary_key=True),
        sa.Column("profile", postgresql.JSONB()),
        sa.Column("presence", sa.String(length=16)),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.add_column("router_cases", sa.Column("assignee", sa.String(length=128)))
    op.execute(
        "UPDATE router_cases SET assignee = document->>'assignee' "
        "WHERE document->>'assignee' IS NOT NULL"
    )
    op.create_index(
        "ix_router_cases_assignee_open",
        "router_cases",
        ["tenant", "assignee"],
        postgresql_where=sa.text("status IN ('open', 'responded') AND assignee IS NOT NULL"),
    )
    op.create_index(
        "ix_router_cases_unassigned_open",
        "router_cases",
        ["tenant", "first_response_due_at"],
        postgresql_where=sa.text("status = 'open' AND assignee IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_router_cases_unassigned_open", table_name="router_cases")
    op.drop_index("ix_router_cases_assignee_open", table_name="router_cases")
    op.drop_column("router_cases", "assignee")
    op.drop_table("router_agents")
