"""webhook filters: an endpoint may ask for some queues and priorities only

Revision ID: 0007
Revises: 0006

A legal team's desktop subscribes to its queue, a crisis room to P1: NULL means every queue or
every priority, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("queues", postgresql.ARRAY(sa.String(length=64))))
    op.add_column(
        "webhook_endpoints", sa.Column("priorities", postgresql.ARRAY(sa.String(length=2)))
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "priorities")
    op.drop_column("webhook_endpoints", "queues")
