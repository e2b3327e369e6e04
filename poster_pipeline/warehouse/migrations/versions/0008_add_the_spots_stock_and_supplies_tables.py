"""Add the spots, stock and supplies tables

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 03:06:12.639200
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
    op.create_table(
        "stock",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "ingredient_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="Poster id of the ingredient or product",
        ),
        sa.Column(
            "storage_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="the storage (the list call's storage_id)",
        ),
        sa.Column("ingredient_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "storage_ingredient_left",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="balance on this storage; may be negative",
        ),
        sa.Column(
            "limit_value",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="low-stock threshold",
        ),
        sa.Column(
            "ingredient_unit",
            sa.Text(),
            autoincrement=False,
            nullable=True,
            comment="kg, l or p (pieces)",
        ),
        sa.Column(
            "ingredients_type",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="1 ingredient, 2 product or modifier",
        ),
        sa.Column(
            "storage_ingredient_sum",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="value on this storage, minor units",
        ),
        sa.Column(
            "storage_ingredient_sum_netto",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="value without tax, minor units",
        ),
        sa.Column(
            "prime_cost",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="unit cost, minor units",
        ),
        sa.Column(
            "prime_cost_netto",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="unit cost without tax, minor units",
        ),
        sa.Column("hidden", sa.Boolean(), autoincrement=False, nullable=True),
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
        sa.PrimaryKeyConstraint("account", "storage_id", "ingredient_id", name=op.f("pk_stock")),
        comment="Stock (остатки): the balance of every ingredient and product on every storage, zero balances included. The total over all storages is ingredients.ingredient_left.",
    )
    op.create_table(
        "supplies",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "supply_id", sa.BigInteger(), autoincrement=False, nullable=False, comment="Poster id"
        ),
        sa.Column(
            "storage_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="the storage delivered to",
        ),
        sa.Column("supplier_id", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column(
            "date",
            sa.DateTime(),
            autoincrement=False,
            nullable=True,
            comment="when it was delivered, the restaurant's local time",
        ),
        sa.Column(
            "supply_sum",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="sum, minor units (storage.getSupply's major units too)",
        ),
        sa.Column("supply_comment", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("supplier_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "account_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="the finance account it was paid from",
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
        sa.PrimaryKeyConstraint("account", "supply_id", name=op.f("pk_supplies")),
        comment="Supplies (поставки): deliveries from suppliers to storages, with their sums.",
    )
    op.create_index(op.f("ix_supplies_account_date"), "supplies", ["account", "date"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_supplies_account_date"), table_name="supplies")
    op.drop_table("supplies")
    op.drop_table("stock")
    op.drop_table("spots")
