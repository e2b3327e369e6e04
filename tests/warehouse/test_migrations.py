"""Migrations create exactly the schema the code expects, and walk down and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.warehouse.migrate import VERSION_TABLE, alembic_config, downgrade, upgrade
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
    expected = {"sync_status", "accounts", "webhook_events", "sync_requests", "oauth_states"}
    assert {e.table for e in ENTITIES} | expected | {"alerts_sent"} <= tables(engine)


def test_every_migration_walks_down_and_up_again(engine):
    reset(engine)
    script = ScriptDirectory.from_config(alembic_config(engine))
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    for revision in revisions:
        downgrade(engine, "-1")
        with engine.connect() as conn:
            current = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()
        assert current == script.get_revision(revision).down_revision
    assert tables(engine) <= {VERSION_TABLE}
    upgrade(engine)
    assert schema_drift(engine) == []
    upgrade(engine)  # idempotent
    assert schema_drift(engine) == []


def test_the_last_full_attempt_column_comes_and_goes_with_its_migration(engine):
    reset(engine)
    downgrade(engine, "0003")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("sync_status")}
    assert "last_full_attempt_at" not in columns and "last_full_sync_at" in columns
    upgrade(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("sync_status")}
    assert "last_full_attempt_at" in columns
