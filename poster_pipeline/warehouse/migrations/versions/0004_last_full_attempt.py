"""Record when a full sync was last attempted, so smart sync backs off after a failure

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 13:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_status") as batch:
        batch.add_column(
            sa.Column(
                "last_full_attempt_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="last full sync, successful or not",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_status") as batch:
        batch.drop_column("last_full_attempt_at")
