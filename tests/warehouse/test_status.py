"""sync_status on PostgreSQL and SQLite: each kind's error clears when that kind next works.

The syncs are real loads (full_sync, partial_sync) and real failure records, in the order a
restaurant's day could bring them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from poster_pipeline.catalogue import entity
from poster_pipeline.poster.records import to_record
from poster_pipeline.warehouse.load import full_sync, partial_sync
from poster_pipeline.warehouse.schema import sync_status
from poster_pipeline.warehouse.status import (
    SyncError,
    SyncKind,
    errors_of,
    newest_error,
    record_failure,
)

INGREDIENTS = entity("ingredients")
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FULL_FAILED = "ingredients sync of account cafe failed: Poster menu.getIngredients: HTTP 503"
PARTIAL_FAILED = "partial sync of ingredients for account cafe failed: HTTP 500"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def records(*ids: int):
    return [
        to_record(INGREDIENTS, {"ingredient_id": str(i), "ingredient_name": f"I{i}", "delete": "0"})
        for i in ids
    ]


def full_ok(engine, account, minutes: int) -> None:
    full_sync(engine, INGREDIENTS, account, records(1, 2), now=at(minutes))


def partial_ok(engine, account, minutes: int) -> None:
    partial_sync(engine, INGREDIENTS, account, records(1), missing=(), now=at(minutes))


def failed(engine, account, kind: SyncKind, minutes: int) -> None:
    message = FULL_FAILED if kind == "full" else PARTIAL_FAILED
    record_failure(engine, "ingredients", account, message, now=at(minutes), kind=kind)


def status(engine, account):
    with engine.connect() as conn:
        return conn.execute(sa.select(sync_status).where(sync_status.c.account == account)).one()


def errors(engine, account) -> tuple[SyncError | None, SyncError | None]:
    """The standing (full, partial) errors."""
    found = errors_of(status(engine, account))
    return found["full"], found["partial"]


def full_error(minutes: int) -> SyncError:
    return SyncError("full", FULL_FAILED, at(minutes))


def partial_error(minutes: int) -> SyncError:
    return SyncError("partial", PARTIAL_FAILED, at(minutes))


def test_a_failed_partial_clears_when_a_partial_sync_next_works(engine, account):
    full_ok(engine, account, 0)
    failed(engine, account, "partial", 10)
    assert errors(engine, account) == (None, partial_error(10))
    assert status(engine, account).last_success is False

    partial_ok(engine, account, 20)
    partial_ok(engine, account, 30)

    row = status(engine, account)
    assert errors(engine, account) == (None, None)
    assert (row.last_success, row.last_error) == (True, None)
    assert (row.partial_sync_count, row.failure_count) == (2, 1)


def test_a_failed_full_sync_stands_through_successful_partial_syncs(engine, account):
    full_ok(engine, account, 0)
    failed(engine, account, "full", 10)
    partial_ok(engine, account, 20)

    row = status(engine, account)
    assert errors(engine, account) == (full_error(10), None)
    assert (row.last_success, row.last_error) == (False, FULL_FAILED)
    assert row.last_partial_sync_at is not None and row.full_sync_count == 1


def test_a_successful_full_sync_clears_both_kinds(engine, account):
    failed(engine, account, "partial", 10)
    failed(engine, account, "full", 20)
    full_ok(engine, account, 30)

    row = status(engine, account)
    assert errors(engine, account) == (None, None)
    assert (row.last_success, row.last_error) == (True, None)


def test_a_failed_partial_then_a_successful_full_sync_clears_everything(engine, account):
    partial_ok(engine, account, 0)
    failed(engine, account, "partial", 10)
    full_ok(engine, account, 20)
    row = status(engine, account)
    assert errors(engine, account) == (None, None)
    assert (row.last_success, row.last_error) == (True, None)


def test_last_error_is_the_newer_of_the_two_and_falls_back_to_the_older(engine, account):
    full_ok(engine, account, 0)
    failed(engine, account, "full", 10)
    failed(engine, account, "partial", 20)
    row = status(engine, account)
    assert errors(engine, account) == (full_error(10), partial_error(20))
    assert (row.last_success, row.last_error) == (False, PARTIAL_FAILED)

    partial_ok(engine, account, 30)  # the partial error goes, the full one is shown again
    row = status(engine, account)
    assert errors(engine, account) == (full_error(10), None)
    assert (row.last_success, row.last_error) == (False, FULL_FAILED)


def test_a_failure_recorded_late_does_not_hide_a_newer_error_of_the_other_kind(engine, account):
    # A full sync that started at minute 10 fails and is recorded after a partial sync that
    # started at minute 20 failed: last_error stays the newer one.
    failed(engine, account, "partial", 20)
    failed(engine, account, "full", 10)
    row = status(engine, account)
    assert (row.last_success, row.last_error) == (False, PARTIAL_FAILED)


def test_a_partial_sync_with_objects_that_failed_leaves_its_error(engine, account):
    # What run_partial_sync does when some objects failed: the load records its success,
    # then the failure of the others, with the same start time.
    partial_ok(engine, account, 10)
    failed(engine, account, "partial", 10)
    row = status(engine, account)
    assert errors(engine, account) == (None, partial_error(10))
    assert row.last_success is False and row.last_partial_sync_at is not None


def test_the_first_record_of_a_pair_may_be_a_failure_of_either_kind(engine, account):
    other = f"{account}-other"
    failed(engine, account, "partial", 5)
    failed(engine, other, "full", 5)
    assert errors(engine, account) == (None, partial_error(5))
    assert errors(engine, other) == (full_error(5), None)
    assert status(engine, other).last_full_attempt_at is not None
    assert status(engine, account).last_full_attempt_at is None


def test_a_long_message_is_cut_for_both_columns(engine, account):
    record_failure(engine, "ingredients", account, "x" * 5000, now=at(0), kind="partial")
    row = status(engine, account)
    assert len(row.last_partial_error) == len(row.last_error) == 2000


def test_newest_error_picks_by_time():
    full = SyncError("full", "f", at(10))
    partial = SyncError("partial", "p", at(20))
    assert newest_error(full, partial) is partial
    assert newest_error(None, full) is full
    assert newest_error(None, None) is None
