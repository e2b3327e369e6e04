"""The sync procedure against the emulator: the status shows each kind's failure until that
kind works again, with a message that names the problem and never the token."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from poster_pipeline.sync import SyncFailed, run_full_sync, run_partial_sync
from poster_pipeline.warehouse.guard import DeletionGuard
from poster_pipeline.warehouse.schema import sync_status
from poster_pipeline.warehouse.status import errors_of
from tests.sync.test_ordering import (
    ACCOUNT,
    INGREDIENTS,
    claim_change,
    emulator_call,
    services,
)


@pytest.fixture
def faults(emulator):
    """Set emulator faults; every fault is cleared after the test."""
    emulator_call(emulator, "DELETE", "faults")

    def add(**spec: object) -> None:
        emulator_call(emulator, "POST", "faults", spec)

    yield add
    emulator_call(emulator, "DELETE", "faults")


def standing(warehouse) -> dict[str, object]:
    with warehouse.engine().connect() as conn:
        row = conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == ACCOUNT, sync_status.c.entity == INGREDIENTS.name
            )
        ).one()
    return {"success": row.last_success, **errors_of(row)}


def partial_change(emulator, warehouse, index: int):
    """Claim a webhook's change of the ``index``-th listed ingredient (one per call, so the
    events never share a dedup key)."""
    listed = emulator_call(emulator, "GET", f"{ACCOUNT}/ingredients").json()
    return claim_change(warehouse, int(listed[index]["ingredient_id"]))


def test_each_kind_of_failure_clears_when_that_kind_next_works(
    emulator, warehouse, faults, demo_account
):
    sync = services(emulator, warehouse)
    run_full_sync(sync, INGREDIENTS, ACCOUNT, guard=DeletionGuard())

    # A partial sync fails (Poster answers 500 for the object), then the next one works.
    faults(method=INGREDIENTS.single_method, kind="http_status", status=500)
    claim, group = partial_change(emulator, warehouse, 0)
    assert not run_partial_sync(sync, claim, group, run_id="partial-1").ok
    state = standing(warehouse)
    assert state["success"] is False and state["full"] is None
    assert state["partial"] is not None and "HTTP 500" in state["partial"].message
    secret = demo_account.token.split(":")[-1]
    assert secret not in state["partial"].message

    emulator_call(emulator, "DELETE", "faults")
    claim, group = partial_change(emulator, warehouse, 1)
    assert run_partial_sync(sync, claim, group, run_id="partial-2").ok
    assert standing(warehouse) == {"success": True, "full": None, "partial": None}

    # A full sync fails; a partial sync working afterwards does not clear that.
    faults(method=INGREDIENTS.list_method, kind="http_status", status=500)
    with pytest.raises(SyncFailed):
        run_full_sync(sync, INGREDIENTS, ACCOUNT, guard=DeletionGuard())
    emulator_call(emulator, "DELETE", "faults")
    claim, group = partial_change(emulator, warehouse, 2)
    assert run_partial_sync(sync, claim, group, run_id="partial-3").ok
    state = standing(warehouse)
    assert state["success"] is False and state["partial"] is None
    assert state["full"] is not None and INGREDIENTS.list_method in state["full"].message
    assert secret not in state["full"].message

    # The next full sync that works clears it.
    run_full_sync(sync, INGREDIENTS, ACCOUNT, guard=DeletionGuard())
    assert standing(warehouse) == {"success": True, "full": None, "partial": None}
