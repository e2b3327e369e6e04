"""Migrations create exactly the schema the code expects, and walk down and up again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import import_module

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.warehouse.migrate import VERSION_TABLE, alembic_config, downgrade, upgrade
from poster_pipeline.warehouse.schema import metadata
from poster_pipeline.warehouse.status import errors_of
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


# --- 0006: the errors of each kind of sync -------------------------------------------------

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FULL_MESSAGE = "ingredients sync of account cafe failed: Poster menu.getIngredients: HTTP 503"
PARTIAL_MESSAGE = "partial sync of ingredients for account cafe failed: HTTP 500"
LOST_FULL_MESSAGE = import_module(
    "poster_pipeline.warehouse.migrations.versions.0006_sync_errors_per_kind"
).LOST_FULL_MESSAGE


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Rows as the code before 0006 left them, by account: (last full sync, last full attempt,
# last attempt, last_success, last_error), times in minutes after T0.
ROWS_AT_0005 = {
    "fine": (0, 0, 30, True, None),  # a full sync, then partial syncs: nothing stands
    "full-failed": (0, 10, 30, False, FULL_MESSAGE),  # then partial syncs worked
    "partial-failed": (0, 0, 30, False, PARTIAL_MESSAGE),
    "both-failed": (0, 10, 30, False, PARTIAL_MESSAGE),  # the full message was overwritten
    "before-0004": (None, None, 20, False, FULL_MESSAGE),  # no full attempt recorded yet
}

_TIME = sa.DateTime(timezone=True)
_OLD_COLUMNS = {
    "account": sa.Text(),
    "entity": sa.Text(),
    "last_full_sync_at": _TIME,
    "last_full_attempt_at": _TIME,
    "last_attempt_at": _TIME,
    "last_success": sa.Boolean(),
    "last_error": sa.Text(),
}
NEW_COLUMNS = {
    "last_full_error": sa.Text(),
    "last_full_error_at": _TIME,
    "last_partial_error": sa.Text(),
    "last_partial_error_at": _TIME,
}
#: sync_status as 0005 and as 0006 left it, as far as these tests read it.
STATUS_0005 = sa.table("sync_status", *(sa.column(n, t) for n, t in _OLD_COLUMNS.items()))
STATUS_0006 = sa.table(
    "sync_status", *(sa.column(n, t) for n, t in {**_OLD_COLUMNS, **NEW_COLUMNS}.items())
)


def minutes(value: int | None) -> datetime | None:
    return None if value is None else at(value)


def status_rows(engine) -> dict[str, sa.Row]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(STATUS_0006))
        return {row.account: row for row in rows}


def seed_0005(engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(STATUS_0005),
            [
                {
                    "account": account,
                    "entity": "ingredients",
                    "last_full_sync_at": minutes(full),
                    "last_full_attempt_at": minutes(full_attempt),
                    "last_attempt_at": minutes(attempt),
                    "last_success": success,
                    "last_error": error,
                }
                for account, (full, full_attempt, attempt, success, error) in ROWS_AT_0005.items()
            ],
        )


def errors_by_account(engine) -> dict[str, dict]:
    return {
        account: {k: (e.message, e.at) if e else None for k, e in errors_of(row).items()}
        for account, row in status_rows(engine).items()
    }


def test_0006_files_each_standing_error_under_its_kind(engine):
    reset(engine)
    downgrade(engine, "0005")
    seed_0005(engine)

    upgrade(engine)

    assert errors_by_account(engine) == {
        "fine": {"full": None, "partial": None},
        "full-failed": {"full": (FULL_MESSAGE, at(10)), "partial": None},
        "partial-failed": {"full": None, "partial": (PARTIAL_MESSAGE, at(30))},
        "both-failed": {"full": (LOST_FULL_MESSAGE, at(10)), "partial": (PARTIAL_MESSAGE, at(30))},
        "before-0004": {"full": (FULL_MESSAGE, at(20)), "partial": None},
    }
    # The older columns already say what the new ones do.
    rows = status_rows(engine)
    assert {a: (r.last_success, r.last_error) for a, r in rows.items()} == {
        a: (success, error) for a, (*_, success, error) in ROWS_AT_0005.items()
    }


def test_0006_walks_back_folding_the_errors_into_the_older_columns(engine):
    reset(engine)
    downgrade(engine, "0005")
    seed_0005(engine)
    upgrade(engine)
    # Change the per-kind columns only (the code also keeps the older ones in step), so the
    # older values below can only come from the downgrade's fold: the partial error of
    # "partial-failed" cleared, "full-failed" now failing partially too, and more recently.
    new = STATUS_0006
    with engine.begin() as conn:
        conn.execute(
            sa.update(new)
            .where(new.c.account == "partial-failed")
            .values(last_partial_error=None, last_partial_error_at=None)
        )
        conn.execute(
            sa.update(new)
            .where(new.c.account == "full-failed")
            .values(last_partial_error=PARTIAL_MESSAGE, last_partial_error_at=at(40))
        )

    downgrade(engine, "0005")

    columns = {c["name"] for c in sa.inspect(engine).get_columns("sync_status")}
    assert not set(NEW_COLUMNS) & columns
    with engine.connect() as conn:
        rows = conn.execute(sa.select(STATUS_0005))
        folded = {r.account: (r.last_success, r.last_error) for r in rows}
    assert folded == {
        "fine": (True, None),
        "full-failed": (False, PARTIAL_MESSAGE),  # the newer of the two
        "partial-failed": (True, None),
        "both-failed": (False, PARTIAL_MESSAGE),
        "before-0004": (False, FULL_MESSAGE),
    }
    upgrade(engine)
    assert schema_drift(engine) == []
