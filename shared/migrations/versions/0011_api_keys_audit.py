"""API keys with scopes per tenant and queue (stored hashed), and the audit log

Revision ID: 0011
Revises: 0010

A key is found by its token's SHA-256 (unique); after a rotation the previous hash is accepted
until its overlap ends. The audit log is read per tenant, newest first (keyset on at, audit_id),
and filtered by case (target_id) or key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("queues", postgresql.ARRAY(sa.String(length=64))),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_token_hash", sa.String(length=64)),
        sa.Column("previous_token_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_keys_token_hash")),
    )
    op.create_index(op.f("ix_api_keys_previous_token_hash"), "api_keys", ["previous_token_hash"])
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.Uuid()),
        sa.Column("key_name", sa.String(length=128), nullable=False),
        sa.Column("actor", sa.String(length=128)),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.Uuid()),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant", "at", "audit_id"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_id"])
    op.create_index("ix_audit_log_key", "audit_log", ["key_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("api_keys")
