"""webhook reliability: every attempt logged, secret rotation with an overlap

Revision ID: 0006
Revises: 0005

A desktop that missed webhooks reads each delivery's attempts (status, latency, the start of
the response) and asks for redelivery; a rotated signing secret keeps signing beside the new
one until its overlap ends, so receivers switch without losing a webhook.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_attempts",
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text()),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(
        "ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "attempted_at"]
    )
    op.add_column("webhook_endpoints", sa.Column("previous_secret_ciphertext", sa.Text()))
    op.add_column(
        "webhook_endpoints", sa.Column("previous_secret_until", sa.DateTime(timezone=True))
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_created",
        "webhook_deliveries",
        ["endpoint_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_endpoint_created", table_name="webhook_deliveries")
    op.drop_column("webhook_endpoints", "previous_secret_until")
    op.drop_column("webhook_endpoints", "previous_secret_ciphertext")
    op.drop_table("webhook_attempts")
