"""The entity assets materialized through Dagster, against the emulator and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import ENTITIES, entity
from poster_pipeline.orchestration.assets import SyncConfig, entity_asset_key, entity_assets
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WebhookQueueResource,
)
from poster_pipeline.warehouse.schema import entity_table, sync_status

ASSETS = entity_assets()


@pytest.fixture(scope="module")
def instance(emulator) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(
        ACCOUNTS, [a.name for a in emulator.config.accounts] + ["not-connected"]
    )
    return instance


def materialize(emulator, warehouse, instance, account, assets=ASSETS, **run_config):
    return dg.materialize(
        assets,
        partition_key=account,
        instance=instance,
        resources={
            "poster_api": PosterApiResource(base_url=emulator.api_url, max_retries=1),
            "warehouse": warehouse,
            "webhook_queue": WebhookQueueResource(),
        },
        run_config={"ops": {a.op.name: {"config": run_config} for a in assets}}
        if run_config
        else None,
        raise_on_error=False,
    )


def metadata_of(result, spec) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == entity_asset_key(spec)
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def listed(emulator, account: str, spec) -> list[dict]:
    url = f"{emulator.url}/control/{account}/{spec.name}"
    return requests.get(url, timeout=5).json()


def expected_listing(emulator, account: str, spec) -> tuple[int, int]:
    """(rows, Poster calls) of a full sync: stock is one call per live storage, after the
    storages list, and a row per live ingredient on each."""
    if spec.window_field:  # supplies: the default window, 62 days up to today (UTC)
        first = (datetime.now(UTC).date() - timedelta(days=61)).isoformat()
        return sum(s["date"] >= first for s in listed(emulator, account, spec)), 1
    if not spec.scope:
        return len(listed(emulator, account, spec)), 1
    storages = [s for s in listed(emulator, account, entity("storages")) if not s["delete"]]
    ingredients = [i for i in listed(emulator, account, entity("ingredients")) if not i["delete"]]
    return len(storages) * len(ingredients), 1 + len(storages)


def table_counts(warehouse, account: str, spec) -> tuple[int, int]:
    table = entity_table(spec)
    with warehouse.engine().connect() as conn:
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.count().filter(~table.c.is_deleted)).where(
                table.c.account == account
            )
        ).one()
    return row[0], row[1]


def test_a_full_sync_fills_every_table_and_reports_what_it_did(emulator, warehouse, instance):
    result = materialize(emulator, warehouse, instance, "api-demo")
    assert result.success
    for spec in ENTITIES:
        meta = metadata_of(result, spec)
        total, active = table_counts(warehouse, "api-demo", spec)
        rows, calls = expected_listing(emulator, "api-demo", spec)
        assert meta["rows_fetched"] == rows == total
        assert meta["rows_inserted"] == total
        assert meta["dagster/row_count"] == active
        assert meta["rows_total"] == total
        assert meta["api_calls"] == calls
        assert meta["sync"] == "full"
        assert spec.key in meta["preview"]
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 * len(ENTITIES)
    assert all(check.passed for check in checks)


def test_a_run_launched_without_tags_is_tagged_as_a_full_sync(emulator, warehouse, instance):
    # What the UI's Materialize button launches: an asset run with no tag of ours.
    result = materialize(emulator, warehouse, instance, "api-demo", ASSETS[:1])
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags["poster/sync"] == "full"


def test_a_second_sync_reports_everything_unchanged(emulator, warehouse, instance):
    materialize(emulator, warehouse, instance, "api-demo")
    result = materialize(emulator, warehouse, instance, "api-demo")
    assert result.success
    for spec in ENTITIES:
        meta = metadata_of(result, spec)
        assert (meta["rows_inserted"], meta["rows_updated"], meta["rows_marked_deleted"]) == (
            0,
            0,
            0,
        )
        assert meta["rows_unchanged"] == meta["rows_fetched"]


def test_a_change_in_poster_updates_that_row(emulator, warehouse, instance):
    spec = entity("ingredients")
    target = listed(emulator, "api-demo", spec)[3]
    ingredient_id = int(target["ingredient_id"])
    requests.patch(
        f"{emulator.url}/control/api-demo/ingredients/{ingredient_id}",
        json={"ingredient_name": "Сливки 33%"},
        timeout=5,
    ).raise_for_status()
    [asset] = [a for a in ASSETS if a.key == entity_asset_key(spec)]
    result = materialize(emulator, warehouse, instance, "api-demo", assets=[asset])
    assert result.success
    assert metadata_of(result, spec)["rows_updated"] == 1
    table = entity_table(spec)
    with warehouse.engine().connect() as conn:
        name = conn.execute(
            sa.select(table.c.ingredient_name).where(
                table.c.account == "api-demo", table.c.ingredient_id == ingredient_id
            )
        ).scalar_one()
    assert name == "Сливки 33%"


def ingredient_asset():
    return [a for a in ASSETS if a.key == entity_asset_key(entity("ingredients"))]


def status_of(warehouse, account: str, spec_name: str):
    with warehouse.engine().connect() as conn:
        return conn.execute(
            sa.select(sync_status).where(
                sync_status.c.account == account, sync_status.c.entity == spec_name
            )
        ).one()


def add_fault(emulator, **fault) -> None:
    requests.post(f"{emulator.url}/control/faults", json=fault, timeout=5).raise_for_status()


@pytest.fixture
def clean_faults(emulator) -> Iterator[None]:
    requests.delete(f"{emulator.url}/control/faults", timeout=5).raise_for_status()
    yield
    requests.delete(f"{emulator.url}/control/faults", timeout=5).raise_for_status()


def test_the_guard_refuses_an_empty_answer_until_allowed(
    emulator, warehouse, instance, clean_faults
):
    account, spec = "second-cafe", entity("ingredients")
    assert materialize(emulator, warehouse, instance, account, ingredient_asset()).success
    before = table_counts(warehouse, account, spec)

    add_fault(emulator, method="menu.getIngredients", kind="empty")
    refused = materialize(emulator, warehouse, instance, account, ingredient_asset())
    assert not refused.success
    [guard] = [c for c in refused.get_asset_check_evaluations() if c.check_name == "deletion_guard"]
    assert not guard.passed
    assert table_counts(warehouse, account, spec) == before
    status = status_of(warehouse, account, "ingredients")
    assert status.last_success is False and "refused to mark" in status.last_error

    allowed = materialize(
        emulator, warehouse, instance, account, ingredient_asset(), allow_mass_delete=True
    )
    assert allowed.success
    assert table_counts(warehouse, account, spec) == (before[0], 0)

    requests.delete(f"{emulator.url}/control/faults", timeout=5)
    restored = materialize(emulator, warehouse, instance, account, ingredient_asset())
    assert metadata_of(restored, spec)["rows_restored"] == before[1]
    assert table_counts(warehouse, account, spec) == before


def test_a_failed_fetch_leaves_the_table_and_records_why(
    emulator, warehouse, instance, clean_faults
):
    account, spec = "second-cafe", entity("ingredients")
    materialize(emulator, warehouse, instance, account, ingredient_asset())
    before = table_counts(warehouse, account, spec)
    add_fault(emulator, method="menu.getIngredients", kind="http_status", status=500)
    result = materialize(emulator, warehouse, instance, account, ingredient_asset())
    assert not result.success
    assert table_counts(warehouse, account, spec) == before
    status = status_of(warehouse, account, "ingredients")
    assert status.last_success is False
    assert "HTTP 500" in status.last_error and "menu.getIngredients" in status.last_error
    token = next(a.token for a in emulator.config.accounts if a.name == account)
    assert token.split(":")[1] not in status.last_error


def test_an_account_that_is_not_connected_fails_clearly(emulator, warehouse, instance):
    result = materialize(emulator, warehouse, instance, "not-connected", ingredient_asset())
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no account 'not-connected' is connected" in str(failure.step_failure_data.error.message)


def test_since_must_be_a_date():
    assert SyncConfig(since="2025-01-31").since == "2025-01-31"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        SyncConfig(since="31.01.2025")


def test_since_reads_supply_history_and_is_refused_elsewhere(emulator, warehouse, instance):
    by_key = {a.key: a for a in ASSETS}
    supplies = by_key[entity_asset_key(entity("supplies"))]
    workshops = by_key[entity_asset_key(entity("workshops"))]
    since = (date.today() - timedelta(days=365)).isoformat()
    result = materialize(emulator, warehouse, instance, "api-demo", [supplies], since=since)
    assert result.success
    every_supply = len(listed(emulator, "api-demo", entity("supplies")))
    assert metadata_of(result, entity("supplies"))["rows_fetched"] == every_supply

    result = materialize(emulator, warehouse, instance, "api-demo", [workshops], since=since)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "since applies to entities Poster lists by date" in str(
        failure.step_failure_data.error.message
    )
