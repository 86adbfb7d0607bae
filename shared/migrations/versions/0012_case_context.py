"""case context: conversations joined to another conversation's case, customer profiles

Revision ID: 0012
Revises: 0011

A merge sends the absorbed case's conversations to the surviving case, and a linked private
thread joins a case before its first message: the router looks a conversation up here when it
has no case of its own (or its case was merged). Customer profiles are kept per tenant and
customer, reached from each platform identity (channel, handle) that a merge may join.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "router_conversation_aliases",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("conversation_key", sa.String(length=600), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "tenant", "conversation_key", name="pk_router_conversation_aliases"
        ),
    )
    op.create_index(
        "ix_router_conversation_aliases_case", "router_conversation_aliases", ["case_id"]
    )
    op.create_table(
        "router_customers",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_router_customers")),
    )
    op.create_index("ix_router_customers_tenant", "router_customers", ["tenant"])
    op.create_table(
        "router_customer_identities",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "channel", "handle", name="pk_router_customer_identities"
        ),
    )
    op.create_index(
        "ix_router_customer_identities_customer", "router_customer_identities", ["customer_id"]
    )


def downgrade() -> None:
    op.drop_table("router_customer_identities")
    op.drop_table("router_customers")
    op.drop_table("router_conversation_aliases")
