"""kpi handoffs: which cases left the social channel and where each was resolved

Revision ID: 0010
Revises: 0009

`handed_off_at` is the first handoff out of the social channel (phone, e-mail, store, legal,
marketing); `resolution` is how the case stands as of its event `sequence`: social (resolved
in the channel), handoff (resolved by the handoff's target) or none (not resolved).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kpi_case_facts", sa.Column("handed_off_at", sa.DateTime(timezone=True)))
    op.add_column("kpi_case_facts", sa.Column("resolution", sa.String(16)))
    op.add_column(
        "kpi_case_facts", sa.Column("sequence", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("kpi_case_facts", "sequence")
    op.drop_column("kpi_case_facts", "resolution")
    op.drop_column("kpi_case_facts", "handed_off_at")
