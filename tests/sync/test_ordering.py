"""Ordering is the warehouse's job: two syncs of one (account, entity) racing outside Dagster
(no run queue, no tag limit) still leave the newer value."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import entity
from poster_pipeline.orchestration.resources import PosterApiResource
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.sync import SyncServices, run_full_sync, run_partial_sync
from poster_pipeline.warehouse.guard import DeletionGuard
from poster_pipeline.warehouse.queue import Claim, RetryPolicy, enqueue, group_claimed
from poster_pipeline.warehouse.schema import entity_table
from tests.processes import wait_until

ACCOUNT = "api-demo"
INGREDIENTS = entity("ingredients")


def services(emulator, warehouse) -> SyncServices:
    return SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts(with_tokens=True).token,
        client_for=PosterApiResource(base_url=emulator.api_url, max_retries=0).client,
    )


def emulator_call(emulator, method: str, path: str, body: dict | None = None) -> requests.Response:
    answer = requests.request(method, f"{emulator.url}/control/{path}", json=body, timeout=5)
    answer.raise_for_status()
    return answer


def list_calls(emulator) -> int:
    counts = emulator_call(emulator, "GET", "calls").json()
    return int(counts.get("by_method", {}).get(INGREDIENTS.list_method, 0))


def name_in_warehouse(warehouse, ingredient_id: int) -> str:
    table = entity_table(INGREDIENTS)
    with warehouse.engine().connect() as conn:
        return conn.execute(
            sa.select(table.c.ingredient_name).where(
                table.c.account == ACCOUNT, table.c.ingredient_id == ingredient_id
            )
        ).scalar_one()


def claim_change(warehouse, ingredient_id: int):
    """What the receiver and the sensor do for the change's webhook: store it, claim it."""
    event = WebhookEvent(
        account=ACCOUNT,
        object="ingredient",
        object_id=ingredient_id,
        action="changed",
        time=str(int(datetime.now(UTC).timestamp())),
        verify="0" * 32,
    )
    engine = warehouse.engine()
    with engine.begin() as conn:
        enqueue(conn, event, {}, entity="ingredients", now=datetime.now(UTC))
    claim, claimed = Claim.take(
        engine,
        lease=timedelta(minutes=10),
        policy=RetryPolicy(),
        limit=100,
        now=datetime.now(UTC),
    )
    [group] = group_claimed(claimed)
    return claim, group


def test_a_slow_full_sync_never_writes_its_older_list_over_a_newer_partial(emulator, warehouse):
    sync = services(emulator, warehouse)
    run_full_sync(sync, INGREDIENTS, ACCOUNT, guard=DeletionGuard())  # the starting point
    listed = emulator_call(emulator, "GET", f"{ACCOUNT}/ingredients").json()
    ingredient_id = int(listed[0]["ingredient_id"])
    new_name = f"renamed {uuid.uuid4().hex[:8]}"

    # The full sync's list is read when asked for and sent slowly: it holds the old name.
    emulator_call(emulator, "DELETE", "faults")
    emulator_call(
        emulator,
        "POST",
        "faults",
        {"method": INGREDIENTS.list_method, "kind": "stall", "seconds": 1.5, "times": 1},
    )
    calls_before = list_calls(emulator)
    failures: list[BaseException] = []

    def slow_full_sync() -> None:
        try:
            run_full_sync(sync, INGREDIENTS, ACCOUNT, guard=DeletionGuard())
        except BaseException as exc:  # surfaced by the main thread
            failures.append(exc)

    full = threading.Thread(target=slow_full_sync)
    full.start()
    try:
        wait_until(lambda: list_calls(emulator) > calls_before, 10, "the full sync's list call")
        # The change happens after the full sync read its list; its webhook is drained at once.
        emulator_call(
            emulator,
            "PATCH",
            f"{ACCOUNT}/ingredients/{ingredient_id}",
            {"ingredient_name": new_name},
        )
        claim, group = claim_change(warehouse, ingredient_id)
        partial = run_partial_sync(sync, claim, group, run_id="race", lock_wait=30)
    finally:
        full.join(30)
        emulator_call(emulator, "DELETE", "faults")
    assert not failures
    assert partial.ok and partial.settled == 1
    assert name_in_warehouse(warehouse, ingredient_id) == new_name
