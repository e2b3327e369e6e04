"""Spots, stock and supplies, synced from the emulator the way a restaurant's tools read them:
venues with their storages, the balance of every ingredient on every storage, deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.catalogue import entity
from poster_pipeline.emulator import EmulatorAccount, EmulatorConfig, start_in_thread
from poster_pipeline.http.intake import classify
from poster_pipeline.orchestration.resources import PosterApiResource, WarehouseResource
from poster_pipeline.poster.webhooks import WebhookEvent, parse_webhook
from poster_pipeline.sync import SyncFailed, SyncServices, run_full_sync
from poster_pipeline.sync.drain import drain
from poster_pipeline.warehouse.queue import Claim, RetryPolicy, enqueue
from poster_pipeline.warehouse.schema import entity_table
from tests.databases import fresh_engine, postgres_url

ACCOUNT = EmulatorAccount.derive("stock-cafe", 5, 700005)
SPOTS = entity("spots")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[str, WarehouseResource]]:
    config = EmulatorConfig(
        accounts=(ACCOUNT,),
        seed=5,
        sizes={"storages": 4, "ingredients": 30, "spots": 3, "supplies": 40},
    )
    fresh_engine("postgresql", tmp_path_factory.mktemp("unused"), "_stock").dispose()
    warehouse = WarehouseResource(
        database_url=postgres_url("_stock"),
        data_dir=str(tmp_path_factory.mktemp("data")),
        token_key=Fernet.generate_key().decode(),
    )
    with start_in_thread(config) as emulator:
        warehouse.accounts(with_tokens=True).add(ACCOUNT.name, ACCOUNT.token, now=datetime.now(UTC))
        yield emulator.url, warehouse


def services(world) -> SyncServices:
    url, warehouse = world
    return SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts(with_tokens=True).token,
        client_for=PosterApiResource(
            base_url=f"{url}/api", requests_per_second=1000, max_retries=0
        ).client,
    )


def sync(world, spec, **kwargs):
    guard = world[1].deletion_guard(spec)
    return run_full_sync(services(world), spec, ACCOUNT.name, guard=guard, **kwargs)


def rows(world, spec, *columns: str, live: bool = True) -> list[tuple]:
    table = entity_table(spec)
    query = sa.select(*(table.c[c] for c in columns)).where(table.c.account == ACCOUNT.name)
    if live:
        query = query.where(~table.c.is_deleted)
    with world[1].engine().connect() as conn:
        return [tuple(r) for r in conn.execute(query.order_by(*(table.c[c] for c in columns)))]


def control(world, method: str, path: str, **kwargs) -> requests.Response:
    response = requests.request(method, f"{world[0]}/control/{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response


def test_spots_land_with_their_storages_and_a_removed_spot_is_marked_deleted(world):
    report = sync(world, SPOTS).report
    assert report.inserted == 3
    spots = rows(world, SPOTS, "spot_id", "spot_name", "storages")
    assert [s[0] for s in spots] == [1, 2, 3]
    assert spots[0][1] == "Заведение на Мадридской"
    # The storages list is kept as JSON, its leaves as text whatever Poster's number types.
    assert spots[0][2][0]["storage_id"] == "1"
    assert {"storage_id", "storage_name", "storage_adress"} <= set(spots[0][2][0])

    control(world, "PATCH", f"{ACCOUNT.name}/spots/2", json={"spot_name": "Кафе на Крещатике"})
    control(world, "DELETE", f"{ACCOUNT.name}/spots/3")
    report = sync(world, SPOTS).report
    assert (report.updated, report.marked_deleted) == (1, 1)
    assert rows(world, SPOTS, "spot_id", "spot_name")[1] == (2, "Кафе на Крещатике")
    assert [s[0] for s in rows(world, SPOTS, "spot_id")] == [1, 2]


STOCK = entity("stock")


def hook_from(world, delivery: dict) -> int:
    """Store the webhook the emulator sent, the way the receiver stores a verified one."""
    event = parse_webhook(delivery["payload"])
    classified = classify(event, {ACCOUNT.name})
    with world[1].engine().begin() as conn:
        stored = enqueue(
            conn,
            event,
            delivery["payload"],
            entity=classified.entity,
            now=datetime.now(UTC),
            ignore_reason=classified.ignore_reason,
        )
    assert stored.id is not None
    return stored.id


def drain_once(world) -> list:
    claim, claimed = Claim.take(
        world[1].engine(),
        lease=timedelta(minutes=5),
        policy=RetryPolicy(),
        limit=10_000,
        now=datetime.now(UTC),
    )
    return list(drain(services(world), claim, claimed, run_id="test"))


def balance(world, storage_id: int, ingredient_id: int) -> Decimal:
    table = entity_table(STOCK)
    with world[1].engine().connect() as conn:
        return conn.execute(
            sa.select(table.c.storage_ingredient_left).where(
                table.c.account == ACCOUNT.name,
                table.c.storage_id == storage_id,
                table.c.ingredient_id == ingredient_id,
            )
        ).scalar_one()


def test_stock_holds_every_live_storages_balance_of_every_ingredient(world):
    control(world, "PATCH", f"{ACCOUNT.name}/stock/2/1", json={"value_absolute": -12.5})
    result = sync(world, STOCK)
    ingredients = control(world, "GET", f"{ACCOUNT.name}/ingredients").json()
    live_ingredients = [i["ingredient_id"] for i in ingredients if not i["delete"]]
    storages = control(world, "GET", f"{ACCOUNT.name}/storages").json()
    live_storages = [s["storage_id"] for s in storages if not s["delete"]]
    assert len(live_storages) == 3  # the fourth is listed with delete "1"
    # One storages call, then one leftovers call per live storage.
    assert result.api_calls == 1 + len(live_storages)
    expected = {
        (storage, int(ingredient), Decimal(str(left)).quantize(Decimal("0.001")))
        for storage in live_storages
        for ingredient, left in control(world, "GET", f"{ACCOUNT.name}/stock/{storage}")
        .json()
        .items()
    }
    stored = {
        (s, i, left.quantize(Decimal("0.001")))
        for s, i, left in rows(
            world, STOCK, "storage_id", "ingredient_id", "storage_ingredient_left"
        )
    }
    assert stored == expected
    assert len(stored) == len(live_storages) * len(live_ingredients)
    assert (2, 1, Decimal("-12.500")) in stored  # negative stock is kept as it is


def test_a_stock_webhook_refetches_only_the_storage_it_names(world):
    sync(world, STOCK)
    ingredient = next(
        i["ingredient_id"]
        for i in control(world, "GET", f"{ACCOUNT.name}/ingredients").json()
        if not i["delete"]
    )
    deliveries = [
        control(
            world, "PATCH", f"{ACCOUNT.name}/stock/2/{ingredient}", json={"value_relative": -1.5}
        ).json()["webhook"]
        for _ in range(4)
    ]
    moved = control(world, "GET", f"{ACCOUNT.name}/stock/2").json()[str(ingredient)]
    for delivery in deliveries:
        hook_from(world, delivery)
    control(world, "DELETE", "calls")

    (result,) = drain_once(world)
    assert result.ok and result.settled == 4
    calls = control(world, "GET", "calls").json()["by_method"]
    assert calls == {"storage.getStorageLeftovers": 1}  # four events, one storage, one call
    assert balance(world, 2, ingredient) == Decimal(str(moved))


def test_a_stock_hook_without_its_storage_is_ignored_with_a_reason(world):
    event = WebhookEvent(
        account=ACCOUNT.name,
        object="stock",
        object_id=39,
        action="changed",
        time="1770000000",
        verify="0" * 32,
        data='{"element_id":39}',
    )
    assert classify(event, {ACCOUNT.name}).ignore_reason == "stock hook without data.storage_id"


def test_a_failing_storage_fails_the_whole_stock_sync_and_changes_nothing(world):
    sync(world, STOCK)
    before = rows(world, STOCK, "storage_id", "ingredient_id", "storage_ingredient_left")
    control(world, "PATCH", f"{ACCOUNT.name}/stock/1/1", json={"value_absolute": 999})
    control(
        world,
        "POST",
        "faults",
        json={
            "method": "storage.getStorageLeftovers",
            "kind": "error",
            "code": 20,
            "after": 2,  # the third storage's call, inside the load's transaction
            "times": 1,
        },
    )
    try:
        with pytest.raises(SyncFailed, match="getStorageLeftovers"):
            sync(world, STOCK)
    finally:
        control(world, "DELETE", "faults")
    assert rows(world, STOCK, "storage_id", "ingredient_id", "storage_ingredient_left") == before
    sync(world, STOCK)
    assert balance(world, 1, 1) == 999


def test_a_storage_that_has_stock_and_lists_nothing_fails_the_sync_and_changes_nothing(world):
    """With zero balances asked for, a storage lists every ingredient: an empty answer for
    one of three storages is a fault, and its rows stay (the share guard alone would let a
    third of the rows go)."""
    sync(world, STOCK)
    before = rows(world, STOCK, "storage_id", "ingredient_id", "storage_ingredient_left")
    control(
        world,
        "POST",
        "faults",
        json={"method": "storage.getStorageLeftovers", "kind": "empty", "after": 1, "times": 1},
    )
    try:
        with pytest.raises(SyncFailed, match="listed nothing"):
            sync(world, STOCK)
    finally:
        control(world, "DELETE", "faults")
    assert rows(world, STOCK, "storage_id", "ingredient_id", "storage_ingredient_left") == before


def test_stock_of_a_storage_gone_from_the_list_is_deleted_only_once_poster_confirms(world):
    sync(world, STOCK)
    # The storages list cut short: storage 3 is missing, yet storage.getStorage still has it.
    control(
        world,
        "POST",
        "faults",
        json={"method": "storage.getStorages", "kind": "truncate", "keep": 2, "times": 1},
    )
    with pytest.raises(SyncFailed, match=r"storage 3 .* Poster still has it"):
        sync(world, STOCK)
    assert {s for (s,) in rows(world, STOCK, "storage_id")} == {1, 2, 3}
    # Removed for real: the storage is listed with delete "1" and its stock goes.
    on_storage_3 = len(rows(world, STOCK, "storage_id", "ingredient_id")) // 3
    control(world, "DELETE", f"{ACCOUNT.name}/storages/3")
    report = sync(world, STOCK).report
    assert report.marked_deleted == on_storage_3
    assert {s for (s,) in rows(world, STOCK, "storage_id")} == {1, 2}


SUPPLIES = entity("supplies")


def supplies_in_poster(world) -> list[dict]:
    return control(world, "GET", f"{ACCOUNT.name}/supplies").json()


def test_a_supplies_sync_reads_the_rolling_window_and_keeps_older_history(world):
    today = datetime.now(UTC).date()
    everything = supplies_in_poster(world)
    # History first, on request: every supply from 130 days back.
    result = sync(world, SUPPLIES, since=today - timedelta(days=130))
    assert result.api_calls == 1
    assert result.report.fetched == len(everything)
    stored = dict(rows(world, SUPPLIES, "supply_id", "supply_sum", live=False))
    assert stored == {s["supply_id"]: s["supply_sum"] for s in everything}  # kopecks
    flagged = {s["supply_id"] for s in everything if s["delete"]}
    assert 2 in flagged
    assert {i for (i,) in rows(world, SUPPLIES, "supply_id")} == set(stored) - flagged

    # The rolling window (10 days here) reads only its own days: older supplies are not
    # in the answer, and stay as they are.
    result = sync(world, SUPPLIES, window_days=10)
    first_day = (today - timedelta(days=9)).isoformat()
    recent = [s for s in everything if s["date"] >= first_day]
    assert result.report.fetched == len(recent) < len(everything)
    assert result.report.marked_deleted == 0
    assert {i for (i,) in rows(world, SUPPLIES, "supply_id")} == set(stored) - flagged


def test_a_supply_deleted_in_poster_inside_the_window_is_marked_deleted(world):
    sync(world, SUPPLIES, since=datetime.now(UTC).date() - timedelta(days=130))
    live = [s for s in supplies_in_poster(world) if not s["delete"]]
    newest = max(live, key=lambda s: s["date"])
    control(world, "DELETE", f"{ACCOUNT.name}/supplies/{newest['supply_id']}")
    report = sync(world, SUPPLIES).report
    assert report.marked_deleted == 1
    assert newest["supply_id"] not in {i for (i,) in rows(world, SUPPLIES, "supply_id")}


def test_a_supply_whose_date_moved_out_of_the_window_is_updated_not_deleted(world):
    """Its webhook lost, a supply Poster moved 100 days back vanishes from the window's list;
    storage.getSupply still has it, so the sync takes its new date instead of refusing or
    deleting it."""
    today = datetime.now(UTC).date()
    sync(world, SUPPLIES, since=today - timedelta(days=130))
    newest = max((s for s in supplies_in_poster(world) if not s["delete"]), key=lambda s: s["date"])
    moved_to = datetime.combine(today - timedelta(days=100), time(10))
    control(
        world,
        "PATCH",
        f"{ACCOUNT.name}/supplies/{newest['supply_id']}",
        json={"date": moved_to.strftime("%Y-%m-%d %H:%M:%S"), "supply_comment": "moved"},
    )
    report = sync(world, SUPPLIES).report  # the 62-day window
    assert (report.marked_deleted, report.updated) == (0, 1)
    assert (newest["supply_id"], moved_to) in rows(world, SUPPLIES, "supply_id", "date")


def test_a_supply_webhook_stores_the_getters_major_units_as_minor_units(world):
    live = next(s for s in supplies_in_poster(world) if not s["delete"])
    changed = control(
        world,
        "PATCH",
        f"{ACCOUNT.name}/supplies/{live['supply_id']}",
        json={"supply_sum": 669882890, "supply_comment": "Накладная 7"},
    ).json()
    hook_from(world, changed["webhook"])
    control(world, "DELETE", "calls")

    (result,) = drain_once(world)
    assert result.ok and result.strategy == "single"
    assert control(world, "GET", "calls").json()["by_method"] == {"storage.getSupply": 1}
    stored = {
        i: (total, comment)
        for i, total, comment in rows(world, SUPPLIES, "supply_id", "supply_sum", "supply_comment")
    }
    # storage.getSupply answered "6698828.90"; the list says "669882890": one column, kopecks.
    assert stored[live["supply_id"]] == (669882890, "Накладная 7")


def test_a_storage_whose_list_fails_holds_back_only_its_own_stock_events(world):
    sync(world, STOCK)
    for storage in (1, 2):
        hook_from(
            world,
            control(
                world, "PATCH", f"{ACCOUNT.name}/stock/{storage}/3", json={"value_relative": 1}
            ).json()["webhook"],
        )
    moved = control(world, "GET", f"{ACCOUNT.name}/stock/2").json()["3"]
    control(
        world,
        "POST",
        "faults",
        json={"method": "storage.getStorageLeftovers", "kind": "http_status", "times": 1},
    )
    try:
        (result,) = drain_once(world)
    finally:
        control(world, "DELETE", "faults")
    # Storages are re-read in id order: storage 1's call failed, storage 2's was applied.
    assert set(result.failed) == {1}
    assert (result.settled, result.retried) == (1, 1)
    assert balance(world, 2, 3) == Decimal(str(moved))


def test_an_ingredient_a_storage_no_longer_lists_is_deleted_from_that_storage_only(world):
    sync(world, STOCK)
    gone = next(
        i["ingredient_id"]
        for i in control(world, "GET", f"{ACCOUNT.name}/ingredients").json()
        if not i["delete"] and i["ingredient_id"] > 10
    )
    control(world, "DELETE", f"{ACCOUNT.name}/ingredients/{gone}")
    # A stock hook for storage 2 only: its list no longer shows the removed ingredient.
    hook_from(
        world,
        control(world, "PATCH", f"{ACCOUNT.name}/stock/2/1", json={"value_relative": 1}).json()[
            "webhook"
        ],
    )
    (result,) = drain_once(world)
    assert result.ok and result.report.marked_deleted == 1
    live = set(rows(world, STOCK, "storage_id", "ingredient_id"))
    assert (2, gone) not in live
    assert (1, gone) in live  # storage 1 was not re-read: the full sync will judge it
    still_listed = sum(1 for _, i in live if i == gone)  # storage 1, and any other not re-read
    assert sync(world, STOCK).report.marked_deleted == still_listed
    assert gone not in {i for _, i in rows(world, STOCK, "storage_id", "ingredient_id")}
    control(world, "POST", f"{ACCOUNT.name}/ingredients/{gone}/restore")


def test_a_spot_webhook_reads_the_spots_list_once(world):
    sync(world, SPOTS)
    changed = control(
        world, "PATCH", f"{ACCOUNT.name}/spots/1", json={"spot_adress": "Киев, ул. Новая, 1"}
    ).json()
    hook_from(world, changed["webhook"])
    control(world, "DELETE", "calls")
    (result,) = drain_once(world)
    assert result.ok and result.strategy == "list"
    assert control(world, "GET", "calls").json()["by_method"] == {"access.getSpots": 1}
    assert ("Киев, ул. Новая, 1",) in rows(world, SPOTS, "spot_adress")


def test_a_forced_stock_sync_takes_the_storages_list_at_its_word(world):
    sync(world, STOCK)
    held = {s for (s,) in rows(world, STOCK, "storage_id")}
    kept = sorted(held)[:1]
    control(
        world,
        "POST",
        "faults",
        json={"method": "storage.getStorages", "kind": "truncate", "keep": 1, "times": 2},
    )
    try:
        with pytest.raises(SyncFailed, match="allow_mass_delete: true"):
            sync(world, STOCK)
        sync(world, STOCK, allow_mass_delete=True)
    finally:
        control(world, "DELETE", "faults")
    assert {s for (s,) in rows(world, STOCK, "storage_id")} == set(kept)
    sync(world, STOCK)  # the whole list again: every live storage's stock is back
    assert {s for (s,) in rows(world, STOCK, "storage_id")} == held
