"""Add alerts_sent, the de-duplication state of failure alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts_sent",
        sa.Column("key", sa.Text(), nullable=False, comment="what the alerts are about"),
        sa.Column(
            "last_sent_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the last alert about the key went out",
        ),
        sa.Column(
            "count_suppressed",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="alerts held back since last_sent_at",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alerts_sent")),
        comment="Alert de-duplication: at most one alert per key and window.",
    )


def downgrade() -> None:
    op.drop_table("alerts_sent")
