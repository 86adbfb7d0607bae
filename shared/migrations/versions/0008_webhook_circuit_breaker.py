"""webhook circuit breaker: an endpoint failing again and again is left alone for a while

Revision ID: 0008
Revises: 0007

After CIRCUIT_FAILURES failures in a row an endpoint's circuit opens: none of its deliveries is
attempted until `paused_until` (a cool-off that doubles, up to an hour); then they are tried
again, and the first success closes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints",
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("webhook_endpoints", sa.Column("paused_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "paused_until")
    op.drop_column("webhook_endpoints", "consecutive_failures")
