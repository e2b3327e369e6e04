"""The full-sync load path on PostgreSQL and SQLite: what a restaurant's tables must show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from poster_pipeline.catalogue import entity
from poster_pipeline.poster.errors import PosterConnectionError
from poster_pipeline.poster.records import to_record
from poster_pipeline.warehouse.guard import DeletionGuard, MassDeleteRefused
from poster_pipeline.warehouse.load import full_sync
from poster_pipeline.warehouse.schema import entity_table, sync_status
from poster_pipeline.warehouse.status import record_failure

INGREDIENTS = entity("ingredients")
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def wire_ingredient(ingredient_id: int, **fields: object) -> dict:
    """An ingredient as menu.getIngredients sends it: strings, a few numbers."""
    record = {
        "ingredient_id": str(ingredient_id),
        "ingredient_name": f"Ингредиент {ingredient_id}",
        "category_id": "3",
        "ingredient_left": "443.45000",
        "limit_value": "0",
        "ingredient_unit": "kg",
        "ingredient_weight": 0,
        "ingredients_type": "1",
        "partial_write_off": "0",
        "delete": "0",
    }
    record.update({k: str(v) if isinstance(v, int) else v for k, v in fields.items()})
    return record


def snapshot(*wire: dict):
    return [to_record(INGREDIENTS, raw) for raw in wire]


def rows(engine, account: str) -> dict[int, sa.Row]:
    table = entity_table(INGREDIENTS)
    with engine.connect() as conn:
        result = conn.execute(sa.select(table).where(table.c.account == account))
        return {row.ingredient_id: row for row in result}


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def sync(engine, account, records, at, **kwargs):
    return full_sync(engine, INGREDIENTS, account, records, now=at, **kwargs)


def test_first_sync_inserts_everything_typed(engine, account):
    report = sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 6))), T0)
    assert (report.fetched, report.inserted, report.updated, report.unchanged) == (5, 5, 0, 0)
    assert (report.active_total, report.rows_total, report.marked_deleted) == (5, 5, 0)
    stored = rows(engine, account)
    assert sorted(stored) == [1, 2, 3, 4, 5]
    first = stored[1]
    assert first.ingredient_left == Decimal("443.45")
    assert first.category_id == 3 and first.ingredient_weight == 0
    assert first.partial_write_off is False and first.is_deleted is False
    assert first.raw["ingredient_id"] == "1"
    assert aware(first.first_seen_at) == aware(first.updated_at) == aware(first.synced_at) == T0


def test_an_unchanged_second_sync_writes_nothing(engine, account):
    wire = [wire_ingredient(i) for i in range(1, 6)]
    sync(engine, account, snapshot(*wire), T0)
    before = rows(engine, account)
    report = sync(engine, account, snapshot(*wire), T0 + timedelta(hours=1))
    assert (report.inserted, report.updated, report.marked_deleted, report.unchanged) == (
        0,
        0,
        0,
        5,
    )
    after = rows(engine, account)
    for key, row in after.items():
        assert row.updated_at == before[key].updated_at
        assert row.synced_at == before[key].synced_at


def test_the_single_getters_wire_types_are_not_a_change(engine, account):
    sync(engine, account, snapshot(wire_ingredient(1)), T0)
    as_getter = {
        k: int(v) if k in ("ingredient_id", "category_id", "ingredients_type") else v
        for k, v in wire_ingredient(1).items()
    }
    report = sync(engine, account, snapshot(as_getter), T0 + timedelta(hours=1))
    assert (report.updated, report.unchanged) == (0, 1)
    row = rows(engine, account)[1]
    assert aware(row.updated_at) == T0  # the content did not change …
    assert row.raw["ingredient_id"] == 1  # … but raw is Poster's latest answer


def test_a_field_outside_the_catalogue_is_kept_current_in_raw(engine, account):
    sync(engine, account, snapshot(wire_ingredient(1, prime_cost="100")), T0)
    sync(engine, account, snapshot(wire_ingredient(1, prime_cost="999")), T0 + timedelta(hours=1))
    row = rows(engine, account)[1]
    assert row.raw["prime_cost"] == "999"
    assert aware(row.updated_at) == T0


def test_a_nul_character_does_not_block_the_entity(engine, account):
    report = sync(engine, account, snapshot(wire_ingredient(1, ingredient_name="Сыр\x00")), T0)
    assert report.inserted == 1
    assert rows(engine, account)[1].ingredient_name == "Сыр"


def test_a_changed_field_rewrites_only_that_row(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 4))), T0)
    changed = [
        wire_ingredient(1),
        wire_ingredient(2, ingredient_left="-908.00000"),
        wire_ingredient(3),
    ]
    later = T0 + timedelta(hours=2)
    report = sync(engine, account, snapshot(*changed), later)
    assert (report.updated, report.unchanged) == (1, 2)
    stored = rows(engine, account)
    assert stored[2].ingredient_left == Decimal("-908")
    assert aware(stored[2].updated_at) == later
    assert aware(stored[1].updated_at) == aware(stored[3].updated_at) == T0
    assert aware(stored[2].first_seen_at) == T0


def test_a_deleted_flag_and_an_absence_both_mark_deleted(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 5))), T0)
    later = T0 + timedelta(minutes=5)
    report = sync(
        engine,
        account,
        snapshot(wire_ingredient(1), wire_ingredient(2, delete="1"), wire_ingredient(3)),
        later,
    )
    assert report.marked_deleted == 2
    assert report.active_total == 2 and report.rows_total == 4
    stored = rows(engine, account)
    flagged, vanished = stored[2], stored[4]
    assert flagged.is_deleted and aware(flagged.deleted_at) == later
    assert vanished.is_deleted and aware(vanished.deleted_at) == later
    # A deletion changes the row's state, not its content.
    assert aware(flagged.updated_at) == aware(vanished.updated_at) == T0
    assert aware(flagged.synced_at) == aware(vanished.synced_at) == later
    assert flagged.raw["delete"] == "1"
    assert not stored[1].is_deleted and stored[1].deleted_at is None


def test_a_deleted_row_keeps_its_deletion_time_across_syncs(engine, account):
    sync(engine, account, snapshot(wire_ingredient(1), wire_ingredient(2)), T0)
    sync(engine, account, snapshot(wire_ingredient(1)), T0 + timedelta(hours=1))
    report = sync(engine, account, snapshot(wire_ingredient(1)), T0 + timedelta(hours=2))
    assert report.marked_deleted == 0 and report.unchanged == 1
    assert aware(rows(engine, account)[2].deleted_at) == T0 + timedelta(hours=1)


def test_a_returning_row_is_restored(engine, account):
    sync(engine, account, snapshot(wire_ingredient(1), wire_ingredient(2)), T0)
    sync(engine, account, snapshot(wire_ingredient(1)), T0 + timedelta(hours=1))
    back = T0 + timedelta(hours=2)
    report = sync(engine, account, snapshot(wire_ingredient(1), wire_ingredient(2)), back)
    assert (report.restored, report.updated, report.inserted) == (1, 1, 0)
    row = rows(engine, account)[2]
    assert not row.is_deleted and row.deleted_at is None
    assert aware(row.synced_at) == back
    assert aware(row.first_seen_at) == T0


def test_the_guard_refuses_an_emptied_list_and_changes_nothing(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 31))), T0)
    before = rows(engine, account)
    with pytest.raises(MassDeleteRefused, match=r"30 of 30 active ingredients") as refused:
        sync(engine, account, [], T0 + timedelta(hours=1))
    assert "allow_mass_delete" in str(refused.value)
    assert rows(engine, account) == before


def test_the_guard_refuses_a_truncated_list_but_allows_a_plausible_one(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 41))), T0)
    with pytest.raises(MassDeleteRefused):
        sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 11))), T0)
    report = sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 21))), T0)
    assert report.marked_deleted == 20 and not report.guard_overridden


def test_the_guard_allows_an_emptied_list_when_told(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 31))), T0)
    report = sync(engine, account, [], T0 + timedelta(hours=1), allow_mass_delete=True)
    assert report.guard_overridden and report.marked_deleted == 30
    assert all(row.is_deleted for row in rows(engine, account).values())


def test_small_tables_may_shrink_but_not_be_wiped_out(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 6))), T0)
    guard = DeletionGuard(max_share=0.5, min_rows=20)
    report = sync(engine, account, snapshot(wire_ingredient(1)), T0, guard=guard)
    assert report.marked_deleted == 4
    with pytest.raises(MassDeleteRefused, match="1 of 1 active"):
        sync(engine, account, [], T0, guard=guard)


def test_a_failed_load_leaves_the_previous_rows_exactly_as_they_were(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 6))), T0)
    before = rows(engine, account)
    poisoned = snapshot(wire_ingredient(1, ingredient_name="changed"), wire_ingredient(2))
    poisoned.append(to_record(INGREDIENTS, wire_ingredient(2**70)))  # beyond BIGINT
    with pytest.raises((psycopg.Error, OverflowError)):  # COPY on PostgreSQL, sqlite3 on SQLite
        sync(engine, account, poisoned, T0 + timedelta(hours=1))
    assert rows(engine, account) == before


def test_a_list_that_breaks_off_midway_changes_nothing(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 6))), T0)
    before = rows(engine, account)

    def breaking_stream():
        yield to_record(INGREDIENTS, wire_ingredient(1, ingredient_name="changed"))
        yield to_record(INGREDIENTS, wire_ingredient(6))
        raise PosterConnectionError("the connection broke off", method="m", account=account)

    with pytest.raises(PosterConnectionError):
        sync(engine, account, breaking_stream(), T0 + timedelta(hours=1))
    assert rows(engine, account) == before


def test_ids_listed_more_than_once_keep_the_last_occurrence(engine, account):
    report = sync(
        engine,
        account,
        snapshot(
            wire_ingredient(1, ingredient_name="old"),
            wire_ingredient(2),
            wire_ingredient(1, ingredient_name="newer"),
            wire_ingredient(1, ingredient_name="new"),
        ),
        T0,
    )
    assert (report.fetched, report.duplicates, report.inserted) == (4, 2, 2)
    assert {i: r.ingredient_name for i, r in rows(engine, account).items()}[1] == "new"


def test_accounts_do_not_see_each_other(engine, account):
    other = f"{account}-other"
    sync(engine, account, snapshot(wire_ingredient(1), wire_ingredient(2)), T0)
    sync(engine, other, snapshot(wire_ingredient(1)), T0)
    assert len(rows(engine, account)) == 2 and not rows(engine, account)[2].is_deleted


def test_sync_status_records_successes_and_failures(engine, account):
    sync(engine, account, snapshot(wire_ingredient(1)), T0, run_id="run-1")
    record_failure(
        engine,
        "ingredients",
        account,
        "Poster menu.getIngredients: HTTP 503",
        now=T0 + timedelta(hours=1),
    )
    sync(engine, account, snapshot(wire_ingredient(1), wire_ingredient(2)), T0 + timedelta(hours=2))
    record_failure(
        engine, "ingredients", account, "boom", now=T0 + timedelta(hours=3), run_id="run-4"
    )
    with engine.connect() as conn:
        status = conn.execute(sa.select(sync_status).where(sync_status.c.account == account)).one()
    assert status.entity == "ingredients"
    assert (status.full_sync_count, status.failure_count) == (2, 2)
    assert aware(status.last_full_sync_at) == T0 + timedelta(hours=2)
    assert aware(status.last_attempt_at) == T0 + timedelta(hours=3)
    assert status.last_success is False and status.last_error == "boom"
    assert (status.rows_active, status.rows_total, status.last_run_id) == (2, 2, "run-4")
