"""router hardening: webhook signing secrets encrypted at rest, delivery lease tokens

Revision ID: 0002
Revises: 0001

Secrets are encrypted by the router, not here: the migration runs where the router's key
(SCS_ROUTER_WEBHOOK_SECRETS_KEY) need not be, so it adds `secret_ciphertext` and makes the old
plaintext `secret` nullable; at start the router encrypts every plaintext secret into
`secret_ciphertext` and clears `secret`, in one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("secret_ciphertext", sa.Text(), nullable=True))
    op.alter_column(
        "webhook_endpoints", "secret", existing_type=sa.String(length=128), nullable=True
    )
    op.add_column("webhook_deliveries", sa.Column("lease_token", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_webhook_deliveries_pending_per_endpoint",
        "webhook_deliveries",
        ["endpoint_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    # Endpoints registered after 0002 have no plaintext secret to go back to: refuse rather
    # than leave them unusable by the old code.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE secret IS NULL) THEN "
        "RAISE EXCEPTION 'webhook secrets are encrypted; downgrade would lose them'; "
        "END IF; END $$"
    )
    op.drop_index("ix_webhook_deliveries_pending_per_endpoint", "webhook_deliveries")
    op.drop_column("webhook_deliveries", "lease_token")
    op.alter_column(
        "webhook_endpoints", "secret", existing_type=sa.String(length=128), nullable=False
    )
    op.drop_column("webhook_endpoints", "secret_ciphertext")
