"""Migrations create exactly the schema the code expects, and walk down and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.warehouse.migrate import VERSION_TABLE, downgrade, upgrade
from poster_pipeline.warehouse.schema import metadata
from tests.databases import reset


def schema_drift(engine) -> list:
    with engine.connect() as conn:
        options = {"compare_type": True, "version_table": VERSION_TABLE}
        context = MigrationContext.configure(conn, opts=options)
        return compare_metadata(context, metadata)


def tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_migrated_schema_equals_the_catalogue_derived_schema(engine):
    reset(engine)
    assert schema_drift(engine) == []
    assert {e.table for e in ENTITIES} | {"sync_status", "accounts"} <= tables(engine)


def test_downgrade_one_step_and_upgrade_again(engine):
    reset(engine)
    downgrade(engine, "-1")
    assert "webhook_events" not in tables(engine)
    assert "ingredients" in tables(engine)
    downgrade(engine, "base")
    assert tables(engine) <= {VERSION_TABLE}
    upgrade(engine)
    assert schema_drift(engine) == []
    upgrade(engine)  # idempotent
    assert schema_drift(engine) == []
