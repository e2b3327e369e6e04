"""Add the spots, stock and supplies tables

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 02:49:09.818091
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spots",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "spot_id", sa.BigInteger(), autoincrement=False, nullable=False, comment="Poster id"
        ),
        sa.Column("spot_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "spot_adress",
            sa.Text(),
            autoincrement=False,
            nullable=True,
            comment="address (Poster's spelling)",
        ),
        sa.Column(
            "storages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            autoincrement=False,
            nullable=True,
            comment="the spot's storages: storage_id, storage_name, address",
        ),
        sa.Column(
            "raw",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
            comment="the object as Poster sent it",
        ),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="last change of content",
        ),
        sa.Column(
            "synced_at", sa.DateTime(timezone=True), nullable=False, comment="last write by a sync"
        ),
        sa.PrimaryKeyConstraint("account", "spot_id", name=op.f("pk_spots")),
        comment="Spots (заведения): the venues, each with the storages it uses.",
    )


def downgrade() -> None:
    op.drop_table("spots")
