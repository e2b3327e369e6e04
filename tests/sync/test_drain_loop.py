"""The drain outside Dagster: one drain keeps taking newly due events while it runs, a slow
restaurant holds up only its own changes, and what a stopped drain never tried is given back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import entity
from poster_pipeline.orchestration.resources import PosterApiResource
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.sync import SyncServices
from poster_pipeline.sync.drain import DrainLimits, drain
from poster_pipeline.warehouse.queue import Claim, ClaimedEvent, RetryPolicy, enqueue
from poster_pipeline.warehouse.schema import webhook_events

_times = itertools.count(1_770_000_000)
LEASE = timedelta(minutes=10)


@pytest.fixture(autouse=True)
def empty_queue(emulator, warehouse) -> Iterator[None]:
    with warehouse.engine().begin() as conn:
        conn.execute(sa.delete(webhook_events))
    yield
    requests.delete(f"{emulator.url}/control/faults", timeout=5).raise_for_status()


def services(emulator, warehouse) -> SyncServices:
    return SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts(with_tokens=True).token,
        client_for=PosterApiResource(base_url=emulator.api_url, max_retries=0).client,
    )


def first_live(emulator, account: str, entity_name: str = "ingredients") -> int:
    key = entity(entity_name).key
    listed = requests.get(f"{emulator.url}/control/{account}/{entity_name}", timeout=5).json()
    return next(int(o[key]) for o in listed if str(o.get("delete", "0")) == "0")


def hook(warehouse, account: str, object_id: int, entity_name: str = "ingredients") -> int:
    """What the receiver stores for a verified webhook on an object of ``entity_name``."""
    event = WebhookEvent(
        account=account,
        object=entity(entity_name).webhook_objects[0],
        object_id=object_id,
        action="changed",
        time=str(next(_times)),
        verify="0" * 32,
    )
    with warehouse.engine().begin() as conn:
        stored = enqueue(conn, event, {}, entity=entity_name, now=datetime.now(UTC))
    assert stored.id is not None
    return stored.id


def take(warehouse) -> tuple[Claim, list[ClaimedEvent]]:
    return Claim.take(
        warehouse.engine(), lease=LEASE, policy=RetryPolicy(), limit=100, now=datetime.now(UTC)
    )


def status_of(warehouse, event_id: int) -> tuple[str, str | None]:
    with warehouse.engine().connect() as conn:
        row = conn.execute(
            sa.select(webhook_events.c.status, webhook_events.c.claim_id).where(
                webhook_events.c.id == event_id
            )
        ).one()
    return row.status, row.claim_id


def slow_down(emulator, account: str, seconds: float) -> None:
    requests.post(
        f"{emulator.url}/control/faults",
        json={
            "method": "menu.getIngredient",
            "kind": "latency",
            "seconds": seconds,
            "account": account,
            "times": 1,
        },
        timeout=5,
    ).raise_for_status()


def test_events_stored_while_a_drain_runs_are_applied_by_that_drain(emulator, warehouse):
    first = hook(warehouse, "api-demo", first_live(emulator, "api-demo"))
    claim, claimed = take(warehouse)
    limits = DrainLimits(take_for=60, idle_for=1.0, poll=0.1)
    results = drain(
        services(emulator, warehouse),
        claim,
        claimed,
        run_id="loop",
        limits=limits,
        take=lambda: take(warehouse),
    )
    applied = [next(results)]
    later = hook(warehouse, "second-cafe", first_live(emulator, "second-cafe"))
    applied += list(results)  # ends once no claim held events for idle_for seconds

    assert [(r.account, r.settled) for r in applied] == [("api-demo", 1), ("second-cafe", 1)]
    assert status_of(warehouse, first)[0] == status_of(warehouse, later)[0] == "done"


def test_a_slow_restaurant_holds_up_only_its_own_changes(emulator, warehouse):
    slow_down(emulator, "api-demo", 2.0)
    hook(warehouse, "api-demo", first_live(emulator, "api-demo"))
    hook(warehouse, "second-cafe", first_live(emulator, "second-cafe"))
    claim, claimed = take(warehouse)

    done = list(drain(services(emulator, warehouse), claim, claimed, run_id="slow"))

    assert [r.account for r in done] == ["second-cafe", "api-demo"]
    assert all(r.ok for r in done)


def test_a_drain_closed_early_gives_back_what_it_never_tried(emulator, warehouse):
    slow_down(emulator, "api-demo", 3.0)
    stalled = hook(warehouse, "api-demo", first_live(emulator, "api-demo"))
    # Behind the stalled ingredients in api-demo's line: never started before the close.
    waiting = hook(warehouse, "api-demo", first_live(emulator, "api-demo", "storages"), "storages")
    hook(warehouse, "second-cafe", first_live(emulator, "second-cafe"))
    claim, claimed = take(warehouse)
    results = drain(services(emulator, warehouse), claim, claimed, run_id="closed")

    first = next(results)
    results.close()  # waits for the stalled sync in progress, gives back the rest

    assert first.account == "second-cafe" and first.ok
    assert status_of(warehouse, stalled)[0] == "done"
    assert status_of(warehouse, waiting) == ("pending", None)


def test_a_failed_group_ends_the_taking_so_the_failure_is_reported_soon(emulator, warehouse):
    requests.post(
        f"{emulator.url}/control/faults",
        json={"method": "menu.getIngredient", "kind": "http_status", "status": 500},
        timeout=5,
    ).raise_for_status()
    hook(warehouse, "api-demo", first_live(emulator, "api-demo"))
    claim, claimed = take(warehouse)
    results = drain(
        services(emulator, warehouse),
        claim,
        claimed,
        run_id="failing",
        limits=DrainLimits(take_for=60, idle_for=30, poll=0.1),
        take=lambda: take(warehouse),
    )
    [failed] = [next(results)]
    later = hook(warehouse, "second-cafe", first_live(emulator, "second-cafe"))
    assert list(results) == []  # ends once what it held is applied, not idle_for later

    assert not failed.ok and failed.problem
    assert status_of(warehouse, later) == ("pending", None)
