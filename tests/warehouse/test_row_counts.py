"""Row counts per entity table, as the demo's summary prints them."""

from __future__ import annotations

from datetime import timedelta

from poster_pipeline.catalogue import entity
from poster_pipeline.warehouse.row_counts import RowCounts, row_counts
from tests.warehouse.test_load import INGREDIENTS, T0, snapshot, sync, wire_ingredient


def test_counts_an_accounts_active_and_deleted_rows_per_table(engine, account):
    sync(engine, account, snapshot(*(wire_ingredient(i) for i in range(1, 5))), T0)
    # Poster flags one deleted and stops listing another: both are kept, marked deleted.
    later = snapshot(wire_ingredient(1), wire_ingredient(2), wire_ingredient(3, delete="1"))
    sync(engine, account, later, T0 + timedelta(hours=1))
    sync(engine, f"{account}-other", snapshot(wire_ingredient(9)), T0)

    counts = row_counts(engine, account, [INGREDIENTS, entity("workshops")])

    assert counts == {
        "ingredients": RowCounts(active=2, deleted=2),
        "workshops": RowCounts(active=0, deleted=0),
    }
