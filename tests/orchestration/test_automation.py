"""Smart sync and the nightly schedule, evaluated without a daemon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.catalogue import entity
from poster_pipeline.orchestration.assets import entity_asset_key, entity_assets
from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
    resources_for,
)
from poster_pipeline.orchestration.schedules import NIGHTLY_CRON, nightly_full_sync_schedule
from poster_pipeline.settings import Settings
from poster_pipeline.warehouse.freshness import needs_full_sync
from poster_pipeline.warehouse.schema import sync_status
from tests.databases import fresh_engine, postgres_url

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
INGREDIENTS = entity_asset_key(entity("ingredients"))


def defs_for(warehouse: WarehouseResource) -> dg.Definitions:
    """The entity assets, smart sync reading ``warehouse``, as the code location has them."""
    return dg.Definitions(
        assets=entity_assets(DAY, warehouse=warehouse),
        resources={
            "poster_api": PosterApiResource(),
            "warehouse": warehouse,
            "webhook_queue": WebhookQueueResource(),
        },
    )


@pytest.mark.parametrize(
    ("synced_ago", "attempted_ago", "due"),
    [
        (None, None, True),  # never synced
        (timedelta(hours=1), timedelta(hours=1), False),  # fresh
        (timedelta(hours=25), timedelta(hours=25), True),  # stale
        (timedelta(hours=24), timedelta(hours=24), True),  # exactly the window
        (timedelta(hours=25), timedelta(minutes=5), False),  # a full sync just failed: back off
        (timedelta(hours=25), timedelta(minutes=20), True),  # … and retry later
        (None, timedelta(minutes=1), False),  # first sync failing: back off too
    ],
)
def test_the_smart_sync_rule(synced_ago, attempted_ago, due):
    synced = None if synced_ago is None else NOW - synced_ago
    attempted = None if attempted_ago is None else NOW - attempted_ago
    assert needs_full_sync(synced, attempted, now=NOW, window=DAY) is due


UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:9/not-this-warehouse?connect_timeout=2"
DUE = {"never-synced", "stale", "stale-recent-partial"}
ACCOUNT_STATES = {
    "never-synced": None,
    "fresh": (timedelta(hours=2), None),
    "stale": (timedelta(hours=30), None),
    "stale-recent-partial": (timedelta(hours=30), timedelta(minutes=3)),
    "in-flight": (timedelta(hours=30), None),
    "deactivated": (timedelta(hours=30), None),
}


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> WarehouseResource:
    """A PostgreSQL warehouse with one account per situation. The environment names another
    warehouse, which does not answer: smart sync must read the one it is configured with."""
    fresh_engine("postgresql", tmp_path).dispose()
    monkeypatch.setenv("POSTER_DATABASE_URL", UNREACHABLE)
    resource = WarehouseResource(
        database_url=postgres_url(),
        data_dir=str(tmp_path),
        token_key=Fernet.generate_key().decode(),
    )
    store = resource.accounts(with_tokens=True)
    with resource.engine().begin() as conn:
        for account, state in ACCOUNT_STATES.items():
            store.add(account, "1:" + "a" * 32, now=NOW - timedelta(days=3))
            if state is None:
                continue
            full_ago, partial_ago = state
            conn.execute(
                sa.insert(sync_status).values(
                    account=account,
                    entity="ingredients",
                    last_full_sync_at=NOW - full_ago,
                    last_full_attempt_at=NOW - full_ago,
                    last_attempt_at=NOW - full_ago,
                    last_partial_sync_at=None if partial_ago is None else NOW - partial_ago,
                    last_success=True,
                    full_sync_count=1,
                )
            )
    store.deactivate("deactivated", now=NOW)
    return resource


def requested(defs: dg.Definitions, instance: dg.DagsterInstance) -> set[str]:
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=NOW)
    return result.get_requested_partitions(INGREDIENTS)


def test_smart_sync_requests_exactly_the_stale_idle_active_accounts(warehouse):
    defs = defs_for(warehouse)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, list(ACCOUNT_STATES))
    instance.create_run_for_job(
        job_def=defs.resolve_implicit_global_asset_job_def(),
        asset_selection=frozenset([INGREDIENTS]),
        tags={"dagster/partition": "in-flight"},
        status=dg.DagsterRunStatus.STARTED,
    )
    assert requested(defs, instance) == DUE


def test_smart_sync_reads_the_warehouse_the_code_location_configures(
    warehouse, monkeypatch, tmp_path
):
    """As in definitions.py: the warehouse comes from resources_for, its URL as an EnvVar
    that the condition resolves when it is evaluated."""
    monkeypatch.setenv("POSTER_DATABASE_URL", postgres_url())
    configured = resources_for(Settings.from_env())["warehouse"]
    assert isinstance(configured.database_url, dg.EnvVar)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, list(ACCOUNT_STATES))
    assert requested(defs_for(configured), instance) == DUE | {"in-flight"}


def test_every_entity_asset_carries_the_policy_and_the_condition():
    for asset in entity_assets(DAY, warehouse=WarehouseResource()):
        spec = asset.specs_by_key[asset.key]
        assert spec.freshness_policy is not None
        assert "smart sync" in str(spec.automation_condition.get_label())


def test_the_nightly_schedule_requests_the_active_accounts_with_a_partition(warehouse):
    # These accounts have no time zone of their own: POSTER_TIMEZONE's 03:00 is theirs.
    schedule = nightly_full_sync_schedule("Europe/Kyiv")
    assert (schedule.cron_schedule, schedule.execution_timezone) == (NIGHTLY_CRON, "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    tick = datetime(2026, 12, 2, 3, 0, tzinfo=ZoneInfo("Europe/Kyiv"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ACCOUNTS, [a for a in ACCOUNT_STATES if a != "fresh"])
        defs = dg.Definitions.merge(
            defs_for(warehouse), dg.Definitions(jobs=[full_sync_job], schedules=[schedule])
        )
        with dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=tick,
            resources={"warehouse": warehouse},
            repository_def=defs.get_repository_def(),
        ) as context:
            requests = schedule.evaluate_tick(context).run_requests
    # Active accounts with a partition: not the deactivated one, not "fresh" (no partition yet).
    assert sorted(r.partition_key for r in requests) == sorted(
        {"never-synced", "stale", "stale-recent-partial", "in-flight"}
    )
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(r.tags["poster/sync"] == "full" for r in requests)
    assert all(r.run_key == f"nightly:{r.partition_key}:2026-12-02" for r in requests)
