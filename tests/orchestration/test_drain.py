"""Webhook events → sensor → one drain run, against the emulator and PostgreSQL (no daemon:
the sensor is evaluated with build_sensor_context and its run request executed in process)."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import entity, entity_for_webhook_object
from poster_pipeline.orchestration.assets import entity_asset_key, entity_assets
from poster_pipeline.orchestration.drain import (
    DRAIN_OP,
    EVENTS_APPLIED,
    events_applied_checks,
    webhook_drain_job,
)
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WebhookQueueResource,
)
from poster_pipeline.orchestration.tags import SYNC_TAG
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.warehouse.locks import sync_lock
from poster_pipeline.warehouse.queue import enqueue, queue_counts
from poster_pipeline.warehouse.schema import entity_table, sync_status, webhook_events
from sensors.webhooks import webhook_queue_sensor
from tests.processes import wait_until

ASSETS = {asset.key: asset for asset in entity_assets()}
_times = itertools.count(1_760_000_000)
# A run applies the sensor's claim only: the tests drive each tick themselves.
QUEUE = WebhookQueueResource(max_attempts=2, backoff_base_s=60, drain_take_for_s=0)


@pytest.fixture(scope="module")
def instance(emulator, warehouse) -> dg.DagsterInstance:
    """An instance where every entity of both accounts had one full sync."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, ["api-demo", "second-cafe"])
    for account in ("api-demo", "second-cafe"):
        result = dg.materialize(
            list(ASSETS.values()),
            partition_key=account,
            instance=instance,
            resources=resources(emulator, warehouse),
        )
        assert result.success
    return instance


@pytest.fixture(autouse=True)
def empty_queue(emulator, warehouse) -> Iterator[None]:
    with warehouse.engine().begin() as conn:
        conn.execute(sa.delete(webhook_events))
    yield
    requests.delete(f"{emulator.url}/control/faults", timeout=5)


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
    assert request.job_name == webhook_drain_job.name
    return webhook_drain_job.execute_in_process(
        run_config=request.run_config,
        instance=instance,
        tags=request.tags,
        resources=resources(emulator, warehouse, queue),
        raise_on_error=False,
    )


def drained(emulator, warehouse, instance, queue=QUEUE):
    """One sensor tick and the one run it requests."""
    result = tick(instance, warehouse, queue)
    [request] = result.run_requests
    return run(emulator, warehouse, instance, request, queue)


def materializations(result) -> dict[tuple[str, str], dict]:
    """(entity, account) → the metadata of its materialization in the run."""
    found = {}
    for event in result.all_events:  # a failed run's too
        if event.event_type != dg.DagsterEventType.ASSET_MATERIALIZATION:
            continue
        materialization = event.step_materialization_data.materialization
        key = (materialization.asset_key.path[-1], materialization.partition)
        found[key] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def metadata(result) -> dict:
    [found] = materializations(result).values()
    return found


def checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.path[-1], e.partition): e
        for e in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        if e.check_name == EVENTS_APPLIED
    }


def control(emulator, method: str, path: str, account: str = "api-demo", **body) -> dict:
    answer = requests.request(
        method, f"{emulator.url}/control/{account}/{path}", json=body or None, timeout=5
    )
    answer.raise_for_status()
    return answer.json()


def fault(emulator, **spec) -> None:
    requests.post(f"{emulator.url}/control/faults", json=spec, timeout=5).raise_for_status()


def row(warehouse, spec_name: str, object_id: int, account: str = "api-demo"):
    spec = entity(spec_name)
    table = entity_table(spec)
    with warehouse.engine().connect() as conn:
        return conn.execute(
            sa.select(table).where(table.c.account == account, table.c[spec.key] == object_id)
        ).one_or_none()


def statuses(warehouse, ids: list[int]) -> list[str]:
    with warehouse.engine().connect() as conn:
        rows = conn.execute(
            sa.select(webhook_events.c.status)
            .where(webhook_events.c.id.in_(ids))
            .order_by(webhook_events.c.id)
        )
        return list(rows.scalars())


def sync_status_of(warehouse, entity_name: str, account: str = "api-demo"):
    with warehouse.engine().connect() as conn:
        return conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == account, sync_status.c.entity == entity_name
            )
        ).one()


def live_ids(emulator, entity_name: str, account: str = "api-demo") -> list[int]:
    spec = entity(entity_name)
    listed = requests.get(f"{emulator.url}/control/{account}/{entity_name}", timeout=5).json()
    return [int(o[spec.key]) for o in listed if str(o.get("delete", "0")) == "0"]


def first_id(emulator, entity_name: str, account: str = "api-demo") -> int:
    return live_ids(emulator, entity_name, account)[0]


def test_a_changed_object_is_refetched_alone_and_its_events_settled(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    control(emulator, "PATCH", f"ingredients/{ingredient_id}", ingredient_name="Сыр Фета")
    ids = [hook(warehouse, "api-demo", "ingredient", ingredient_id) for _ in range(3)]

    result = tick(instance, warehouse)
    [request] = result.run_requests
    assert request.tags[SYNC_TAG] == "partial"
    assert (request.tags["poster/events"], request.tags["poster/groups"]) == ("3", "1")

    done = run(emulator, warehouse, instance, request)
    assert done.success
    meta = metadata(done)
    assert (meta["sync"], meta["fetch_strategy"], meta["api_calls"]) == ("partial", "single", 1)
    assert (meta["rows_updated"], meta["events_settled"]) == (1, 3)
    assert meta["object_ids"] == str(ingredient_id)
    assert row(warehouse, "ingredients", ingredient_id).ingredient_name == "Сыр Фета"
    assert statuses(warehouse, ids) == ["done"] * 3
    assert checks(done)[("ingredients", "api-demo")].passed
    assert isinstance(tick(instance, warehouse), dg.SkipReason)
    # The partition's history in the UI shows the partial sync as a materialization.
    [latest] = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=entity_asset_key(entity("ingredients")), asset_partitions=["api-demo"]
        ),
        limit=1,
    ).records
    assert latest.run_id == done.run_id


def test_one_run_applies_every_account_and_entity(emulator, warehouse, instance):
    changes = {}
    for account in ("api-demo", "second-cafe"):
        ingredient_id = first_id(emulator, "ingredients", account)
        control(emulator, "PATCH", f"ingredients/{ingredient_id}", account, ingredient_name=account)
        hook(warehouse, account, "ingredient", ingredient_id)
        changes[account] = ingredient_id
    workshop_id = first_id(emulator, "workshops")
    control(emulator, "PATCH", f"workshops/{workshop_id}", workshop_name="Бар 2")
    hook(warehouse, "api-demo", "workshop", workshop_id)

    result = tick(instance, warehouse)
    assert len(result.run_requests) == 1
    done = run(emulator, warehouse, instance, result.run_requests[0])
    assert done.success
    assert sorted(materializations(done)) == [
        ("ingredients", "api-demo"),
        ("ingredients", "second-cafe"),
        ("workshops", "api-demo"),
    ]
    for account, ingredient_id in changes.items():
        assert row(warehouse, "ingredients", ingredient_id, account).ingredient_name == account
    assert row(warehouse, "workshops", workshop_id).workshop_name == "Бар 2"


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

    done = drained(emulator, warehouse, instance)
    assert done.success
    found = materializations(done)
    assert sorted(found) == [("products", "api-demo"), ("workshops", "api-demo")]
    assert found[("products", "api-demo")]["object_ids"] == ", ".join(
        map(str, sorted([product_id, gone]))
    )
    assert row(warehouse, "products", product_id).product_name == "Пирог"
    assert row(warehouse, "products", gone).is_deleted
    assert row(warehouse, "workshops", flagged).is_deleted


def test_a_burst_on_one_entity_costs_at_most_two_api_calls(emulator, warehouse, instance):
    ingredient_ids = live_ids(emulator, "ingredients")
    for n in range(1000):
        hook(warehouse, "api-demo", "ingredient", ingredient_ids[n % len(ingredient_ids)])
    requests.delete(f"{emulator.url}/control/calls", timeout=5)
    result = drained(emulator, warehouse, instance)
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
    result = drained(emulator, warehouse, instance)
    assert metadata(result)["fetch_strategy"] == "list"
    assert row(warehouse, "suppliers", supplier_id).supplier_phone == "+7 900 000 00 00"


def test_one_bad_object_fails_only_its_own_events(emulator, warehouse, instance):
    good_1, bad, good_2 = live_ids(emulator, "ingredients")[:3]
    for object_id, name in ((good_1, "Good 1"), (bad, "Bad"), (good_2, "Good 2")):
        control(emulator, "PATCH", f"ingredients/{object_id}", ingredient_name=name)
    events = {i: hook(warehouse, "api-demo", "ingredient", i) for i in (good_1, bad, good_2)}
    # A persistent error for one object only: its id is the third call's, so the fault
    # targets that call (single fetches go in id order).
    order = sorted(events)
    fault(emulator, method="menu.getIngredient", kind="latency", seconds=0, times=order.index(bad))
    fault(emulator, method="menu.getIngredient", kind="http_status", status=500, times=1)

    done = drained(emulator, warehouse, instance)
    assert not done.success  # visible: the run fails once every other group was applied
    assert row(warehouse, "ingredients", good_1).ingredient_name == "Good 1"
    assert row(warehouse, "ingredients", good_2).ingredient_name == "Good 2"
    assert row(warehouse, "ingredients", bad).ingredient_name != "Bad"
    assert statuses(warehouse, [events[good_1], events[bad], events[good_2]]) == [
        "done",
        "pending",
        "done",
    ]
    meta = metadata(done)
    assert (meta["events_settled"], meta["objects_failed"]) == (2, 1)
    check = checks(done)[("ingredients", "api-demo")]
    assert not check.passed and check.partition == "api-demo"
    status = sync_status_of(warehouse, "ingredients")
    assert status.last_success is False and str(bad) in status.last_error

    # Persistent: the retry fails again and, with max_attempts=2, the event goes dead.
    fault(emulator, method="menu.getIngredient", kind="http_status", status=500)
    with warehouse.engine().begin() as conn:  # let the backoff pass
        conn.execute(sa.update(webhook_events).values(next_attempt_at=datetime.now(UTC)))
    assert not drained(emulator, warehouse, instance).success
    assert statuses(warehouse, [events[bad]]) == ["dead"]


def test_a_failing_list_fails_its_group_and_backs_off_then_goes_dead(emulator, warehouse, instance):
    supplier_id = first_id(emulator, "suppliers")
    event_id = hook(warehouse, "api-demo", "supplier", supplier_id)
    fault(emulator, method="storage.getSuppliers", kind="http_status", status=500)
    done = drained(emulator, warehouse, instance)
    assert not done.success and materializations(done) == {}
    assert not checks(done)[("suppliers", "api-demo")].passed
    assert statuses(warehouse, [event_id]) == ["pending"]
    assert isinstance(tick(instance, warehouse), dg.SkipReason)  # backing off
    with warehouse.engine().begin() as conn:
        conn.execute(sa.update(webhook_events).values(next_attempt_at=datetime.now(UTC)))
    assert not drained(emulator, warehouse, instance).success
    assert statuses(warehouse, [event_id]) == ["dead"]
    status = sync_status_of(warehouse, "suppliers")
    assert status.last_success is False and "HTTP 500" in status.last_error


def test_a_single_not_found_does_not_delete_a_live_row(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    event_id = hook(warehouse, "api-demo", "ingredient", ingredient_id)
    fault(emulator, method="menu.getIngredient", kind="response_false", times=1)
    done = drained(emulator, warehouse, instance)
    assert done.success
    assert not row(warehouse, "ingredients", ingredient_id).is_deleted
    assert statuses(warehouse, [event_id]) == ["done"]  # the second answer had it
    assert metadata(done)["api_calls"] == 2


def test_a_not_found_confirmed_by_a_second_answer_marks_the_row_deleted(
    emulator, warehouse, instance
):
    category_id = first_id(emulator, "product_categories")  # removed outright, not flagged
    control(emulator, "DELETE", f"product_categories/{category_id}")
    hook(warehouse, "api-demo", "category", category_id, "changed")
    done = drained(emulator, warehouse, instance)
    assert done.success
    assert row(warehouse, "product_categories", category_id).is_deleted
    assert (metadata(done)["objects_missing"], metadata(done)["api_calls"]) == (1, 2)


def test_a_removed_event_needs_no_second_answer(emulator, warehouse, instance):
    product_id = first_id(emulator, "products")
    control(emulator, "DELETE", f"products/{product_id}")
    hook(warehouse, "api-demo", "product", product_id, "changed")
    hook(warehouse, "api-demo", "product", product_id, "removed")
    done = drained(emulator, warehouse, instance)
    assert row(warehouse, "products", product_id).is_deleted
    assert metadata(done)["api_calls"] == 1


def test_a_pair_being_synced_elsewhere_is_deferred_not_failed(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    event_id = hook(warehouse, "api-demo", "ingredient", ingredient_id)
    queue = WebhookQueueResource(
        max_attempts=2, backoff_base_s=60, lock_wait_s=0.2, drain_take_for_s=0
    )
    with sync_lock(warehouse.engine(), "api-demo", "ingredients"):
        done = drained(emulator, warehouse, instance, queue)
    assert done.success and materializations(done) == {}
    with warehouse.engine().connect() as conn:
        status, attempts = conn.execute(
            sa.select(webhook_events.c.status, webhook_events.c.attempts).where(
                webhook_events.c.id == event_id
            )
        ).one()
    assert (status, attempts) == ("pending", 0)


def test_a_run_replayed_with_the_same_config_settles_nothing_twice(emulator, warehouse, instance):
    ingredient_id = first_id(emulator, "ingredients")
    hook(warehouse, "api-demo", "ingredient", ingredient_id)
    [request] = tick(instance, warehouse).run_requests
    assert metadata(run(emulator, warehouse, instance, request))["events_settled"] == 1
    again = run(emulator, warehouse, instance, request)
    assert again.success and materializations(again) == {}


def test_partial_syncs_do_not_count_as_full_syncs(emulator, warehouse, instance):
    before = sync_status_of(warehouse, "workshops")
    hook(warehouse, "api-demo", "workshop", first_id(emulator, "workshops"))
    assert drained(emulator, warehouse, instance).success
    after = sync_status_of(warehouse, "workshops")
    assert after.last_full_sync_at == before.last_full_sync_at
    assert after.full_sync_count == before.full_sync_count
    assert after.partial_sync_count == (before.partial_sync_count or 0) + 1
    assert after.last_partial_sync_at is not None


def test_the_sensor_adds_partitions_for_accounts_it_meets(emulator, warehouse, instance):
    hook(warehouse, "third-cafe", "storage", 1)
    result = tick(instance, warehouse)
    [request] = result.run_requests
    [added] = result.dynamic_partitions_requests
    assert list(added.partition_keys) == ["third-cafe"]
    assert request.run_key.startswith("webhooks:")


def test_the_events_applied_check_reads_the_queue(emulator, warehouse, instance):
    supplier_id = first_id(emulator, "suppliers")
    hook(warehouse, "api-demo", "supplier", supplier_id)
    fault(emulator, method="storage.getSuppliers", kind="http_status", status=500)
    assert not drained(emulator, warehouse, instance).success
    [check_def] = [
        c
        for c in events_applied_checks()
        if c.check_key.asset_key == entity_asset_key(entity("suppliers"))
    ]
    result = dg.materialize(
        [check_def, ASSETS[entity_asset_key(entity("suppliers"))]],
        selection=dg.AssetSelection.checks(check_def),
        instance=instance,
        resources=resources(emulator, warehouse),
        raise_on_error=False,
    )
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["events_retrying"].value == 1
    assert evaluation.metadata["accounts"].value == "api-demo"


def recorded(result, event_type: dg.DagsterEventType) -> Counter[tuple[str, str | None]]:
    """How many events of ``event_type`` the run recorded per (entity, partition)."""
    found: Counter[tuple[str, str | None]] = Counter()
    for event in result.all_events:
        if event.event_type == event_type:
            data = event.event_specific_data
            if event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                data = data.materialization
            found[(data.asset_key.path[-1], data.partition)] += 1
    return found


def test_a_drain_run_applies_events_stored_while_it_runs(emulator, warehouse, instance):
    ingredients = live_ids(emulator, "ingredients")
    first = hook(warehouse, "api-demo", "ingredient", ingredients[0])
    [request] = tick(instance, warehouse).run_requests
    queue = WebhookQueueResource(drain_take_for_s=60, drain_idle_s=1)
    later: list[int] = []

    def change_once_the_first_is_applied() -> None:
        wait_until(lambda: statuses(warehouse, [first]) == ["done"], 60, "the first event")
        workshop = first_id(emulator, "workshops", "second-cafe")
        later.append(hook(warehouse, "second-cafe", "workshop", workshop))
        later.append(hook(warehouse, "api-demo", "ingredient", ingredients[1]))

    changer = threading.Thread(target=change_once_the_first_is_applied)
    changer.start()
    try:
        result = run(emulator, warehouse, instance, request, queue)
    finally:
        changer.join(60)
    assert result.success
    assert statuses(warehouse, later) == ["done", "done"]
    assert recorded(result, dg.DagsterEventType.ASSET_MATERIALIZATION) == {
        ("ingredients", "api-demo"): 2,
        ("workshops", "second-cafe"): 1,
    }
    # A passed check is recorded once per partition and run: each is an event-log write.
    assert recorded(result, dg.DagsterEventType.ASSET_CHECK_EVALUATION) == {
        ("ingredients", "api-demo"): 1,
        ("workshops", "second-cafe"): 1,
    }


def test_the_sensor_stands_back_while_a_drain_run_takes_events_itself(
    emulator, warehouse, instance
):
    active = instance.create_run_for_job(
        webhook_drain_job,
        run_config={"ops": {DRAIN_OP: {"config": {"claim_id": "another-claim"}}}},
        status=dg.DagsterRunStatus.STARTED,
    )
    try:
        hook(warehouse, "api-demo", "ingredient", first_id(emulator, "ingredients"))
        assert isinstance(tick(instance, warehouse), dg.SkipReason)
        # An event that waited past the handoff means the active run is lost or saturated.
        impatient = WebhookQueueResource(drain_handoff_s=0)
        assert len(tick(instance, warehouse, impatient).run_requests) == 1
    finally:
        instance.delete_run(active.run_id)
    assert isinstance(tick(instance, warehouse), dg.SkipReason)  # nothing left due
