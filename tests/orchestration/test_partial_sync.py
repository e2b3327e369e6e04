"""Webhook events → sensor → partial syncs, against the emulator and PostgreSQL (no daemon:
the sensor is evaluated with build_sensor_context and its run requests executed in process)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import entity, entity_for_webhook_object
from poster_pipeline.orchestration.assets import SYNC_TAG, entity_asset_key, entity_assets
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WebhookQueueResource,
)
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.warehouse.queue import enqueue, queue_counts
from poster_pipeline.warehouse.schema import entity_table, sync_status, webhook_events
from sensors.webhooks import webhook_queue_sensor

ASSETS = {asset.key: asset for asset in entity_assets()}
_times = itertools.count(1_760_000_000)
QUEUE = WebhookQueueResource(max_attempts=2, backoff_base_s=60)


@pytest.fixture(scope="module")
def instance(emulator, warehouse) -> dg.DagsterInstance:
    """An instance where every entity of the demo account had one full sync."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, ["api-demo"])
    result = dg.materialize(
        list(ASSETS.values()),
        partition_key="api-demo",
        instance=instance,
        resources=resources(emulator, warehouse),
    )
    assert result.success
    return instance


@pytest.fixture(autouse=True)
def empty_queue(warehouse) -> Iterator[None]:
    with warehouse.engine().begin() as conn:
        conn.execute(sa.delete(webhook_events))
    yield


def resources(emulator, warehouse, queue: WebhookQueueResource = QUEUE) -> dict:
    return {
        "poster_api": PosterApiResource(base_url=emulator.api_url, max_retries=0),
        "warehouse": warehouse,
        "webhook_queue": queue,
    }


def hook(warehouse, account: str, obj: str, object_id: int, action: str = "changed") -> int:
    """What the receiver stores for a verified webhook."""
    event = WebhookEvent(
        account=account,
        object=obj,
        object_id=object_id,
        action=action,
        time=str(next(_times)),
        verify="0" * 32,
    )
    target = entity_for_webhook_object(obj)
    with warehouse.engine().begin() as conn:
        stored = enqueue(conn, event, {"object": obj}, entity=target.name, now=datetime.now(UTC))
    assert stored.id is not None
    return stored.id


def tick(instance, warehouse, queue: WebhookQueueResource = QUEUE):
    context = dg.build_sensor_context(
        instance=instance, resources={"warehouse": warehouse, "webhook_queue": queue}
    )
    return webhook_queue_sensor(context)


def run(emulator, warehouse, instance, request: dg.RunRequest, queue=QUEUE):
    [key] = request.asset_selection
    return dg.materialize(
        [ASSETS[key]],
        partition_key=request.partition_key,
        instance=instance,
        run_config=request.run_config,
        tags=request.tags,
        resources=resources(emulator, warehouse, queue),
        raise_on_error=False,
    )


def metadata(result) -> dict:
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def control(emulator, method: str, path: str, **body) -> dict:
    answer = requests.request(
        method, f"{emulator.url}/control/api-demo/{path}", json=body or None, timeout=5
    )
    answer.raise_for_status()
    return answer.json()


def row(warehouse, spec_name: str, object_id: int):
    spec = entity(spec_name)
    table = entity_table(spec)
    with warehouse.engine().connect() as conn:
        return conn.execute(
            sa.select(table).where(table.c.account == "api-demo", table.c[spec.key] == object_id)
        ).one_or_none()


def statuses(warehouse, ids: list[int]) -> list[str]:
    with warehouse.engine().connect() as conn:
        rows = conn.execute(
            sa.select(webhook_events.c.status)
            .where(webhook_events.c.id.in_(ids))
            .order_by(webhook_events.c.id)
        )
        return list(rows.scalars())


def sync_status_of(warehouse, entity_name: str):
    with warehouse.engine().connect() as conn:
        return conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == "api-demo", sync_status.c.entity == entity_name
            )
        ).one()


def first_id(emulator, entity_name: str) -> int:
    spec = entity(entity_name)
    listed = requests.get(f"{emulator.url}/control/api-demo/{entity_name}", timeout=5).json()
    return int(next(o for o in listed if str(o.get("delete", "0")) == "0")[spec.key])


def test_a_changed_object_is_refetched_alone_and_its_events_settled(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    control(emulator, "PATCH", f"ingredients/{ingredient_id}", ingredient_name="Сыр Фета")
    ids = [hook(warehouse, "api-demo", "ingredient", ingredient_id) for _ in range(3)]

    result = tick(instance, warehouse)
    [request] = result.run_requests
    assert request.partition_key == "api-demo"
    assert request.tags[SYNC_TAG] == "partial"
    assert request.asset_selection == [entity_asset_key(entity("ingredients"))]

    done = run(emulator, warehouse, instance, request)
    assert done.success
    meta = metadata(done)
    assert (meta["sync"], meta["fetch_strategy"], meta["api_calls"]) == ("partial", "single", 1)
    assert (meta["rows_updated"], meta["events_settled"]) == (1, 3)
    assert row(warehouse, "ingredients", ingredient_id).ingredient_name == "Сыр Фета"
    assert statuses(warehouse, ids) == ["done"] * 3
    assert isinstance(tick(instance, warehouse), dg.SkipReason)


def test_added_and_removed_objects_land_as_inserted_and_deleted(emulator, warehouse, instance):
    created = control(emulator, "POST", "products", product_name="Пирог", type="3")
    product_id = int(created["object"]["product_id"])
    gone = first_id(emulator, "products")
    control(emulator, "DELETE", f"products/{gone}")
    flagged = first_id(emulator, "workshops")
    control(emulator, "DELETE", f"workshops/{flagged}")
    hook(warehouse, "api-demo", "product", product_id, "added")
    hook(warehouse, "api-demo", "dish", gone, "removed")
    hook(warehouse, "api-demo", "workshop", flagged, "removed")

    runs = tick(instance, warehouse).run_requests
    by_entity = {r.asset_selection[0].path[-1]: r for r in runs}
    assert sorted(by_entity) == ["products", "workshops"]
    [products_config] = by_entity["products"].run_config["ops"].values()
    assert products_config["config"]["object_ids"] == sorted([product_id, gone])
    for request in runs:
        assert run(emulator, warehouse, instance, request).success
    assert row(warehouse, "products", product_id).product_name == "Пирог"
    assert row(warehouse, "products", gone).is_deleted
    assert row(warehouse, "workshops", flagged).is_deleted


def test_a_burst_on_one_entity_costs_at_most_two_api_calls(emulator, warehouse, instance):
    listed = requests.get(f"{emulator.url}/control/api-demo/ingredients", timeout=5).json()
    ingredient_ids = [int(o["ingredient_id"]) for o in listed]
    for n in range(1000):
        hook(warehouse, "api-demo", "ingredient", ingredient_ids[n % len(ingredient_ids)])
    requests.delete(f"{emulator.url}/control/calls", timeout=5)
    [request] = tick(instance, warehouse).run_requests
    result = run(emulator, warehouse, instance, request)
    assert result.success
    meta = metadata(result)
    assert meta["fetch_strategy"] == "list" and meta["events_settled"] == 1000
    calls = requests.get(f"{emulator.url}/control/calls", timeout=5).json()["total"]
    assert calls <= 2
    assert queue_counts(warehouse.engine())["done"] == 1000


def test_supplier_hooks_fetch_the_list(emulator, warehouse, instance):
    supplier_id = first_id(emulator, "suppliers")
    control(emulator, "PATCH", f"suppliers/{supplier_id}", supplier_phone="+7 900 000 00 00")
    hook(warehouse, "api-demo", "supplier", supplier_id)
    [request] = tick(instance, warehouse).run_requests
    result = run(emulator, warehouse, instance, request)
    assert metadata(result)["fetch_strategy"] == "list"
    assert row(warehouse, "suppliers", supplier_id).supplier_phone == "+7 900 000 00 00"


def test_a_failing_partial_sync_backs_off_then_goes_dead(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    event_id = hook(warehouse, "api-demo", "ingredient", ingredient_id)
    requests.post(
        f"{emulator.url}/control/faults",
        json={"method": "menu.getIngredient", "kind": "http_status", "status": 500},
        timeout=5,
    )
    try:
        [request] = tick(instance, warehouse).run_requests
        assert not run(emulator, warehouse, instance, request).success
        assert statuses(warehouse, [event_id]) == ["pending"]
        assert isinstance(tick(instance, warehouse), dg.SkipReason)  # backing off
        with warehouse.engine().begin() as conn:  # let the backoff pass
            conn.execute(sa.update(webhook_events).values(next_attempt_at=datetime.now(UTC)))
        [request] = tick(instance, warehouse).run_requests
        assert not run(emulator, warehouse, instance, request).success
        assert statuses(warehouse, [event_id]) == ["dead"]
    finally:
        requests.delete(f"{emulator.url}/control/faults", timeout=5)
    with warehouse.engine().connect() as conn:
        status = conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == "api-demo", sync_status.c.entity == "ingredients"
            )
        ).one()
    assert status.last_success is False and "HTTP 500" in status.last_error


def test_a_run_replayed_with_the_same_config_settles_nothing_twice(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    hook(warehouse, "api-demo", "ingredient", ingredient_id)
    [request] = tick(instance, warehouse).run_requests
    assert metadata(run(emulator, warehouse, instance, request))["events_settled"] == 1
    again = run(emulator, warehouse, instance, request)
    assert again.success and metadata(again)["events_settled"] == 0


def test_partial_syncs_do_not_count_as_full_syncs(emulator, warehouse, instance):
    with warehouse.engine().connect() as conn:
        before = conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == "api-demo", sync_status.c.entity == "workshops"
            )
        ).one()
    hook(warehouse, "api-demo", "workshop", first_id(emulator, "workshops"))
    [request] = tick(instance, warehouse).run_requests
    assert run(emulator, warehouse, instance, request).success
    with warehouse.engine().connect() as conn:
        after = conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == "api-demo", sync_status.c.entity == "workshops"
            )
        ).one()
    assert after.last_full_sync_at == before.last_full_sync_at
    assert after.full_sync_count == before.full_sync_count
    assert after.partial_sync_count == (before.partial_sync_count or 0) + 1
    assert after.last_partial_sync_at is not None


def test_the_sensor_adds_partitions_for_accounts_it_meets(emulator, warehouse, instance):
    hook(warehouse, "second-cafe", "storage", 1)
    result = tick(instance, warehouse)
    [request] = result.run_requests
    assert request.partition_key == "second-cafe"
    [added] = result.dynamic_partitions_requests
    assert list(added.partition_keys) == ["second-cafe"]
    assert request.run_key.startswith("webhooks:")
