"""Bind each OAuth state to the browser that started the authorization

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00

States issued before this migration have no browser to be checked against, so they are
deleted: an authorization in progress during the upgrade has to be started again (states
live ten minutes anyway).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM oauth_states"))
    # SQLite cannot add a NOT NULL column without a default in place: rebuild the table there
    # (only there: a rebuild on PostgreSQL would drop the table's comment).
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("oauth_states", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(
            sa.Column(
                "browser_hash",
                sa.Text(),
                nullable=False,
                comment="SHA-256 of the browser key in the cookie of the browser that started it",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("browser_hash")
