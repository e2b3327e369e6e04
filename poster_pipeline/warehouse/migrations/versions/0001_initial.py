"""Create the entity tables, sync_status and accounts

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-01 13:06:50.928530
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "account_number", sa.Text(), nullable=True, comment="Poster's numeric account id"
        ),
        sa.Column("token_encrypted", sa.Text(), nullable=False, comment="Fernet token"),
        sa.Column("auth_method", sa.Text(), nullable=False, comment="personal or oauth"),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "time_zone", sa.Text(), nullable=True, comment="IANA time zone of the restaurant"
        ),
        sa.CheckConstraint(
            "auth_method IN ('personal', 'oauth')", name=op.f("ck_accounts_auth_method")
        ),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_accounts")),
        comment="Connected Poster accounts; each active one is a Dagster partition.",
    )
    op.create_table(
        "ingredient_categories",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "category_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="Poster id (ingredient-category namespace)",
        ),
        sa.Column("name", sa.Text(), autoincrement=False, nullable=True),
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
        sa.PrimaryKeyConstraint("account", "category_id", name=op.f("pk_ingredient_categories")),
        comment="Ingredient categories. Their ids are a namespace of their own: id 4 here is not product category 4.",
    )
    op.create_table(
        "ingredients",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "ingredient_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="Poster id",
        ),
        sa.Column("ingredient_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("ingredient_barcode", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "category_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="ingredient category (0 = none)",
        ),
        sa.Column(
            "ingredient_left",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="total stock over all storages; may be negative",
        ),
        sa.Column(
            "limit_value",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="low-stock threshold",
        ),
        sa.Column(
            "time_notif",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="time of the last low-stock notification",
        ),
        sa.Column(
            "ingredient_unit",
            sa.Text(),
            autoincrement=False,
            nullable=True,
            comment="kg, l or p (pieces)",
        ),
        sa.Column(
            "ingredient_weight",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="weight of one piece",
        ),
        sa.Column(
            "ingredients_losses_clear",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="loss % when cleaning",
        ),
        sa.Column(
            "ingredients_losses_cook",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="loss % when cooking",
        ),
        sa.Column(
            "ingredients_losses_fry",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="loss % when frying",
        ),
        sa.Column(
            "ingredients_losses_stew",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="loss % when stewing",
        ),
        sa.Column(
            "ingredients_losses_bake",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="loss % when baking",
        ),
        sa.Column(
            "ingredients_type",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="1 ingredient, 2 system ingredient of a product",
        ),
        sa.Column("partial_write_off", sa.Boolean(), autoincrement=False, nullable=True),
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
        sa.PrimaryKeyConstraint("account", "ingredient_id", name=op.f("pk_ingredients")),
        comment="Ingredients (ингредиенты) with total stock across storages.",
    )
    op.create_table(
        "product_categories",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "category_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="Poster id (menu-category namespace)",
        ),
        sa.Column("category_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("category_photo", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "parent_category",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="parent category (0 = root)",
        ),
        sa.Column("category_color", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("category_hidden", sa.Boolean(), autoincrement=False, nullable=True),
        sa.Column("sort_order", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column("fiscal", sa.Boolean(), autoincrement=False, nullable=True),
        sa.Column("nodiscount", sa.Boolean(), autoincrement=False, nullable=True),
        sa.Column("tax_id", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column(
            "left",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="nested-set left bound",
        ),
        sa.Column(
            "right",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="nested-set right bound",
        ),
        sa.Column(
            "level",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="depth in the tree",
        ),
        sa.Column("category_tag", sa.Text(), autoincrement=False, nullable=True),
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
        sa.PrimaryKeyConstraint("account", "category_id", name=op.f("pk_product_categories")),
        comment="Menu (product and dish) categories, a tree through parent_category.",
    )
    op.create_table(
        "products",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "product_id", sa.BigInteger(), autoincrement=False, nullable=False, comment="Poster id"
        ),
        sa.Column("product_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "type",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="1 prepack, 2 dish, 3 product",
        ),
        sa.Column(
            "menu_category_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="product category (0 = main screen)",
        ),
        sa.Column("category_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "workshop",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="workshop id (0 = none)",
        ),
        sa.Column(
            "ingredient_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="stock ingredient of a product sold as goods",
        ),
        sa.Column(
            "cost",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="cost price, minor units",
        ),
        sa.Column(
            "cost_netto",
            sa.BigInteger(),
            autoincrement=False,
            nullable=True,
            comment="cost price without tax, minor units",
        ),
        sa.Column("barcode", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("product_code", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("unit", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("fiscal", sa.Boolean(), autoincrement=False, nullable=True),
        sa.Column("fiscal_code", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("nodiscount", sa.Boolean(), autoincrement=False, nullable=True),
        sa.Column("hidden", sa.Boolean(), autoincrement=False, nullable=True),
        sa.Column("tax_id", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column("product_tax_id", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column(
            "weight_flag",
            sa.Boolean(),
            autoincrement=False,
            nullable=True,
            comment="sold by weight",
        ),
        sa.Column("color", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("photo", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("photo_origin", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("sort_order", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column("cooking_time", sa.BigInteger(), autoincrement=False, nullable=True),
        sa.Column(
            "out",
            sa.Numeric(precision=20, scale=5),
            autoincrement=False,
            nullable=True,
            comment="dish yield (netto); 0 for products",
        ),
        sa.Column(
            "spots",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            autoincrement=False,
            nullable=True,
            comment="price, profit and visibility per spot; money in minor units",
        ),
        sa.Column(
            "modifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            autoincrement=False,
            nullable=True,
            comment="product modifiers",
        ),
        sa.Column(
            "group_modifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            autoincrement=False,
            nullable=True,
            comment="dish modifier groups",
        ),
        sa.Column(
            "ingredients",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            autoincrement=False,
            nullable=True,
            comment="recipe lines of a dish or prepack",
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
        sa.PrimaryKeyConstraint("account", "product_id", name=op.f("pk_products")),
        comment="Products and dishes (товары и тех. карты) with prices per spot, modifiers and recipes.",
    )
    op.create_table(
        "storages",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "storage_id", sa.BigInteger(), autoincrement=False, nullable=False, comment="Poster id"
        ),
        sa.Column("storage_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "storage_adress",
            sa.Text(),
            autoincrement=False,
            nullable=True,
            comment="address (Poster's spelling)",
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
        sa.PrimaryKeyConstraint("account", "storage_id", name=op.f("pk_storages")),
        comment="Storages (склады) that hold the stock.",
    )
    op.create_table(
        "suppliers",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "supplier_id", sa.BigInteger(), autoincrement=False, nullable=False, comment="Poster id"
        ),
        sa.Column("supplier_name", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("supplier_phone", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "supplier_adress",
            sa.Text(),
            autoincrement=False,
            nullable=True,
            comment="address (Poster's spelling)",
        ),
        sa.Column("supplier_comment", sa.Text(), autoincrement=False, nullable=True),
        sa.Column(
            "supplier_code",
            sa.Text(),
            autoincrement=False,
            nullable=True,
            comment="legal-entity code (EDRPOU)",
        ),
        sa.Column("supplier_tin", sa.Text(), autoincrement=False, nullable=True, comment="tax id"),
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
        sa.PrimaryKeyConstraint("account", "supplier_id", name=op.f("pk_suppliers")),
        comment="Suppliers (поставщики). Poster has no single getter and no webhook for them, so every change is picked up by a full list fetch.",
    )
    op.create_table(
        "sync_status",
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column(
            "last_full_sync_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last successful full sync",
        ),
        sa.Column(
            "last_partial_sync_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last successful partial sync",
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success", sa.Boolean(), nullable=False),
        sa.Column(
            "last_error",
            sa.Text(),
            nullable=True,
            comment="why the last attempt failed; NULL after success",
        ),
        sa.Column("full_sync_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("partial_sync_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failure_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "rows_active",
            sa.Integer(),
            nullable=True,
            comment="rows not deleted after the last success",
        ),
        sa.Column(
            "rows_total", sa.Integer(), nullable=True, comment="all rows after the last success"
        ),
        sa.Column(
            "last_run_id", sa.Text(), nullable=True, comment="the Dagster run of the last attempt"
        ),
        sa.PrimaryKeyConstraint("account", "entity", name=op.f("pk_sync_status")),
        comment="One row per account and entity: the state of its syncs.",
    )
    op.create_table(
        "workshops",
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        sa.Column(
            "workshop_id", sa.BigInteger(), autoincrement=False, nullable=False, comment="Poster id"
        ),
        sa.Column("workshop_name", sa.Text(), autoincrement=False, nullable=True),
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
        sa.PrimaryKeyConstraint("account", "workshop_id", name=op.f("pk_workshops")),
        comment="Workshops (цеха): the kitchen and bar sections products are prepared in.",
    )


def downgrade() -> None:
    op.drop_table("workshops")
    op.drop_table("sync_status")
    op.drop_table("suppliers")
    op.drop_table("storages")
    op.drop_table("products")
    op.drop_table("product_categories")
    op.drop_table("ingredients")
    op.drop_table("ingredient_categories")
    op.drop_table("accounts")
