"""Migration 0003 creates exactly the ``alerts_sent`` table that ``warehouse.schema`` declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from poster_pipeline.warehouse.migrate import VERSION_TABLE, downgrade, upgrade
from poster_pipeline.warehouse.schema import alerts_sent, metadata
from tests.databases import reset


def drift(engine) -> list:
    """Differences between the migrated ``alerts_sent`` and its declaration (the whole schema
    is the lead's test, tests/warehouse/test_migrations.py)."""
    with engine.connect() as conn:
        options = {"compare_type": True, "version_table": VERSION_TABLE}
        diffs = compare_metadata(MigrationContext.configure(conn, opts=options), metadata)
    return [diff for diff in diffs if "alerts_sent" in repr(diff)]


def tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_table_is_on_the_warehouse_metadata():
    assert metadata.tables["alerts_sent"] is alerts_sent


def test_migrated_schema_matches_and_walks_down_and_up(engine):
    reset(engine)
    assert "alerts_sent" in tables(engine)
    assert drift(engine) == []

    downgrade(engine, "0002")
    assert "alerts_sent" not in tables(engine)
    assert "webhook_events" in tables(engine)

    upgrade(engine)
    assert drift(engine) == []
