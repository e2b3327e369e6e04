"""Spots, stock and supplies, synced from the emulator the way a restaurant's tools read them:
venues with their storages, the balance of every ingredient on every storage, deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.catalogue import entity
from poster_pipeline.emulator import EmulatorAccount, EmulatorConfig, start_in_thread
from poster_pipeline.orchestration.resources import PosterApiResource, WarehouseResource
from poster_pipeline.sync import SyncServices, run_full_sync
from poster_pipeline.warehouse.schema import entity_table
from tests.databases import fresh_engine, postgres_url

ACCOUNT = EmulatorAccount.derive("stock-cafe", 5, 700005)
SPOTS = entity("spots")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[str, WarehouseResource]]:
    config = EmulatorConfig(
        accounts=(ACCOUNT,), seed=5, sizes={"storages": 4, "ingredients": 30, "spots": 3}
    )
    fresh_engine("postgresql", tmp_path_factory.mktemp("unused"), "_stock").dispose()
    warehouse = WarehouseResource(
        database_url=postgres_url("_stock"),
        data_dir=str(tmp_path_factory.mktemp("data")),
        token_key=Fernet.generate_key().decode(),
    )
    with start_in_thread(config) as emulator:
        warehouse.accounts().add(ACCOUNT.name, ACCOUNT.token, now=datetime.now(UTC))
        yield emulator.url, warehouse


def services(world) -> SyncServices:
    url, warehouse = world
    return SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts().token,
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
