"""Add the webhook_events queue

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:15:04.111785
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=False, comment="hash of the signed fields"),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("account_number", sa.Text(), nullable=True),
        sa.Column("object", sa.Text(), nullable=False, comment="Poster's webhook object"),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False, comment="Poster's time, Unix s"),
        sa.Column(
            "entity", sa.Text(), nullable=True, comment="the catalogue entity; NULL when not synced"
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("ignore_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "claim_id", sa.Text(), nullable=True, comment="the claim (one run) that holds the event"
        ),
        sa.Column(
            "claimed_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the claim expires then",
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "settled_by_run", sa.Text(), nullable=True, comment="the Dagster run that settled it"
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
            comment="the webhook body as received",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'done', 'ignored', 'dead')",
            name=op.f("ck_webhook_events_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_webhook_events_dedup_key")),
        comment="Poster webhooks as received: the queue the webhook sensor drains.",
    )
    op.create_index(
        "ix_webhook_events_claims",
        "webhook_events",
        ["account", "entity", "claimed_until"],
        unique=False,
        postgresql_where=sa.text("status = 'claimed'"),
        sqlite_where=sa.text("status = 'claimed'"),
    )
    op.create_index(
        "ix_webhook_events_due",
        "webhook_events",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_events_received_at", "webhook_events", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index(
        "ix_webhook_events_due",
        table_name="webhook_events",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_webhook_events_claims",
        table_name="webhook_events",
        postgresql_where=sa.text("status = 'claimed'"),
        sqlite_where=sa.text("status = 'claimed'"),
    )
    op.drop_table("webhook_events")
