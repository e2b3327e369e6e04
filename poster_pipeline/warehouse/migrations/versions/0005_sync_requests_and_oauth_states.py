"""Add sync_requests (the sync API's queue) and oauth_states (OAuth connect)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column("entity", sa.Text(), nullable=False, comment="the catalogue entity"),
        sa.Column("force", sa.Boolean(), nullable=False, comment="asked as forced, not smart"),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False, comment="who asked, e.g. api"),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "launched_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the sensor requested its run",
        ),
        sa.Column(
            "run_key",
            sa.Text(),
            nullable=True,
            comment="the run key of the Dagster run that serves it",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'launched')", name=op.f("ck_sync_requests_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_requests")),
        comment="Full syncs requested through the sync API; the sync_requests sensor launches them.",
    )
    op.create_index(
        "ix_sync_requests_pending",
        "sync_requests",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_sync_requests_recent",
        "sync_requests",
        ["account", "entity", "force", "requested_at"],
        unique=False,
    )
    op.create_table(
        "oauth_states",
        sa.Column(
            "state_hash",
            sa.Text(),
            nullable=False,
            comment="SHA-256 of the state, hex; the state itself is never stored",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "used_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when a callback spent it; NULL while unused",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
        comment="OAuth states of authorizations in progress: single-use, short-lived.",
    )


def downgrade() -> None:
    op.drop_table("oauth_states")
    op.drop_index("ix_sync_requests_recent", table_name="sync_requests")
    op.drop_index(
        "ix_sync_requests_pending",
        table_name="sync_requests",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_table("sync_requests")
