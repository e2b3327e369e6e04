"""The sync_requests sensor: API requests → one full-sync run per (account, entity), run keys,
requests marked launched, partitions added; and the whole path API → sensor → run → status,
against the emulator and PostgreSQL (no daemon: the run is executed in process)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.catalogue import entity
from poster_pipeline.http import ReceiverSettings, create_app
from poster_pipeline.orchestration.assets import entity_asset_key, entity_assets
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.orchestration.tags import RUN_KEY_TAG, SYNC_TAG
from poster_pipeline.warehouse.schema import accounts, sync_status
from poster_pipeline.warehouse.sync_requests import NewSyncRequest, add_requests, sync_requests
from sensors.sync_requests import sync_requests_sensor
from tests.databases import fresh_engine, postgres_url
from tests.http.conftest import TestClient

SUFFIX = "_api_sensor"
API_KEY = "sensor-test-key"


@pytest.fixture(scope="module")
def warehouse(emulator, tmp_path_factory) -> Iterator[WarehouseResource]:
    fresh_engine("postgresql", tmp_path_factory.mktemp("unused"), SUFFIX).dispose()
    yield WarehouseResource(
        database_url=postgres_url(SUFFIX),
        data_dir=str(tmp_path_factory.mktemp("data")),
        token_key=Fernet.generate_key().decode(),
    )


@pytest.fixture(autouse=True)
def empty(warehouse: WarehouseResource, emulator) -> None:
    with warehouse.engine().begin() as conn:
        for table in (sync_requests, sync_status, accounts):
            conn.execute(sa.delete(table))
    demo = emulator.config.accounts[0]
    warehouse.accounts(with_tokens=True).add(demo.name, demo.token, now=datetime.now(UTC))


def request(warehouse: WarehouseResource, account: str, entity_name: str, force: bool = False):
    with warehouse.engine().begin() as conn:
        add_requests(
            conn,
            [NewSyncRequest(account, entity_name, force)],
            now=datetime.now(UTC),
            requested_by="api",
        )


def rows(warehouse: WarehouseResource) -> list:
    with warehouse.engine().connect() as conn:
        return list(conn.execute(sa.select(sync_requests).order_by(sync_requests.c.id)))


def tick(instance: dg.DagsterInstance, warehouse: WarehouseResource):
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    return sync_requests_sensor(context)


def launch(instance: dg.DagsterInstance, run: dg.RunRequest) -> None:
    """A run carrying the request's run key, as the daemon would create it."""
    defs = dg.Definitions(
        assets=entity_assets(),
        resources={
            "poster_api": PosterApiResource(),
            "warehouse": WarehouseResource(),
            "webhook_queue": WebhookQueueResource(),
        },
    )
    job = defs.resolve_implicit_global_asset_job_def()
    instance.create_run_for_job(
        job_def=job,
        asset_selection=frozenset(run.asset_selection or []),
        tags={**run.tags, RUN_KEY_TAG: run.run_key, "dagster/partition": run.partition_key},
    )


def test_one_run_per_account_and_entity(warehouse: WarehouseResource):
    request(warehouse, "api-demo", "suppliers")
    request(warehouse, "new-cafe", "products", force=True)
    request(warehouse, "api-demo", "suppliers", force=True)  # merged into the first
    request(warehouse, "api-demo", "ingredients")
    ids = [row.id for row in rows(warehouse)]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, ["api-demo"])

    result = tick(instance, warehouse)

    assert isinstance(result, dg.SensorResult)
    runs = result.run_requests
    assert [(r.partition_key, r.asset_selection) for r in runs] == [
        ("api-demo", [entity_asset_key(entity("suppliers"))]),
        ("new-cafe", [entity_asset_key(entity("products"))]),
        ("api-demo", [entity_asset_key(entity("ingredients"))]),
    ]
    assert all(r.tags == {SYNC_TAG: "full", "poster/requested_by": "api"} for r in runs)
    assert [r.run_key.split(":")[:2] for r in runs] == [
        ["sync-request", str(ids[0])],
        ["sync-request", str(ids[1])],
        ["sync-request", str(ids[3])],
    ]
    assert len({r.run_key for r in runs}) == 3
    [partitions] = result.dynamic_partitions_requests
    assert (partitions.partitions_def_name, list(partitions.partition_keys)) == (
        ACCOUNTS,
        ["new-cafe"],
    )
    # Not launched yet: until a run with its key exists, every tick asks again.
    assert {row.status for row in rows(warehouse)} == {"pending"}
    again = tick(instance, warehouse)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in runs]

    for run in runs:  # what the daemon does with the run requests
        launch(instance, run)
    settled = tick(instance, warehouse)
    assert isinstance(settled, dg.SensorResult) and settled.run_requests == []
    stored = rows(warehouse)
    assert {row.status for row in stored} == {"launched"}
    assert all(row.launched_at is not None for row in stored)
    keys = {row.id: row.run_key for row in stored}
    assert keys[ids[0]] == keys[ids[2]] == runs[0].run_key  # the merged pair shares its run
    assert (keys[ids[1]], keys[ids[3]]) == (runs[1].run_key, runs[2].run_key)

    assert isinstance(tick(instance, warehouse), dg.SkipReason)  # nothing pending any more


def test_nothing_pending_is_a_skip(warehouse: WarehouseResource):
    result = tick(dg.DagsterInstance.ephemeral(), warehouse)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no sync request is pending"


def test_a_tick_evaluated_again_requests_the_same_run_keys(warehouse: WarehouseResource):
    request(warehouse, "api-demo", "storages")
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, warehouse)  # its runs lost: the daemon died before launching
    again = tick(instance, warehouse)
    assert isinstance(first, dg.SensorResult) and isinstance(again, dg.SensorResult)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]


def test_a_request_for_an_entity_the_catalogue_lost_is_dropped(warehouse: WarehouseResource):
    request(warehouse, "api-demo", "transactions")
    request(warehouse, "api-demo", "workshops")
    result = tick(dg.DagsterInstance.ephemeral(), warehouse)
    assert isinstance(result, dg.SensorResult)
    [run] = result.run_requests
    assert run.asset_selection == [entity_asset_key(entity("workshops"))]
    assert [(row.entity, row.status, row.run_key) for row in rows(warehouse)] == [
        ("transactions", "launched", None),
        ("workshops", "pending", None),
    ]


def test_api_to_sensor_to_run_to_status(warehouse: WarehouseResource, emulator):
    """POST /api/poster/sync → the sensor's run → the status says it is fresh."""
    app = create_app(ReceiverSettings(application_secret="s", api_key=API_KEY), warehouse.engine())
    auth = {"Authorization": f"Bearer {API_KEY}"}
    instance = dg.DagsterInstance.ephemeral()
    with TestClient(app) as client:
        asked = client.post("/api/poster/sync-suppliers", headers=auth)
        assert asked.status_code == 202
        assert asked.json()["queued"] == [
            {"account": "api-demo", "entity": "suppliers", "force": False}
        ]

        result = tick(instance, warehouse)
        assert isinstance(result, dg.SensorResult)
        [run] = result.run_requests
        instance.add_dynamic_partitions(ACCOUNTS, ["api-demo"])
        [asset] = [a for a in entity_assets() if a.key in run.asset_selection]
        done = dg.materialize(
            [asset],
            partition_key=run.partition_key,
            instance=instance,
            tags={**run.tags, RUN_KEY_TAG: run.run_key},
            resources={
                "poster_api": PosterApiResource(base_url=emulator.api_url, max_retries=0),
                "warehouse": warehouse,
                "webhook_queue": WebhookQueueResource(),
            },
        )
        assert done.success
        tick(instance, warehouse)  # sees the run: the request is launched

        status = client.get("/api/poster/sync", headers=auth).json()
        suppliers = status["accounts"]["api-demo"]["suppliers"]
        assert (suppliers["needsSync"], suppliers["age"], suppliers["lastSyncSuccess"]) == (
            False,
            0,
            True,
        )
        again = client.post("/api/poster/sync-suppliers", headers=auth).json()
        assert again["queued"] == []
        assert again["skipped"][0]["reason"] == "fresh: last full sync 0 s ago"
