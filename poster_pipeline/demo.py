"""The newcomer's demo: the emulator with a demo restaurant, the warehouse, and Dagster.

``poster-pipeline demo --once`` syncs everything once in this process and prints what landed;
``poster-pipeline demo`` starts Dagster's webserver and daemon (``dagster dev``) on the same
setup and leaves the clicking to you.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.emulator import RunningEmulator
from poster_pipeline.orchestration.assets import entity_asset_key, entity_assets
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.settings import Settings
from poster_pipeline.warehouse.accounts import AccountStore, cipher_for
from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.migrate import upgrade
from poster_pipeline.warehouse.schema import entity_table

__all__ = ["SyncSummary", "connect_demo_account", "format_summary", "run_ui", "sync_once"]


def connect_demo_account(settings: Settings, emulator: RunningEmulator) -> str:
    """Migrate the warehouse and connect the emulator's first account; returns its name."""
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        upgrade(engine)
        account = emulator.config.accounts[0]
        store = AccountStore(engine, cipher_for(settings.token_key, settings.data_dir))
        store.add(account.name, account.token, now=datetime.now(UTC))
        return account.name
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SyncSummary:
    entity: str
    fetched: int
    active: int
    deleted: int


def _resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "poster_api": PosterApiResource(base_url=settings.api_url),
        "warehouse": WarehouseResource(
            database_url=settings.database_url,
            data_dir=str(settings.data_dir),
            token_key=settings.token_key,
        ),
        "webhook_queue": WebhookQueueResource(),
    }


def sync_once(settings: Settings, account: str) -> tuple[bool, list[SyncSummary]]:
    """Materialize every entity asset for ``account`` in this process (ephemeral instance)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, [account])
    result = dg.materialize(
        entity_assets(),
        partition_key=account,
        instance=instance,
        resources=_resources(settings),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    fetched: dict[dg.AssetKey, int] = {
        event.asset_key: int(str(event.materialization.metadata["rows_fetched"].value))
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    engine = create_warehouse_engine(settings.warehouse_url)
    summaries = []
    with engine.connect() as conn:
        for spec in ENTITIES:
            table = entity_table(spec)
            active, total = conn.execute(
                sa.select(sa.func.count().filter(~table.c.is_deleted), sa.func.count()).where(
                    table.c.account == account
                )
            ).one()
            rows = fetched.get(entity_asset_key(spec), 0)
            summaries.append(SyncSummary(spec.name, rows, active, total - active))
    engine.dispose()
    return result.success, summaries


def format_summary(summaries: list[SyncSummary]) -> str:
    lines = [f"{'entity':<24}{'fetched':>9}{'active':>9}{'deleted':>9}"]
    lines += [f"{s.entity:<24}{s.fetched:>9}{s.active:>9}{s.deleted:>9}" for s in summaries]
    return "\n".join(lines)


def run_ui(settings: Settings, account: str, host: str, port: int) -> int:
    """Run ``dagster dev`` on the demo setup until interrupted; returns its exit code."""
    data_dir = settings.data_dir.resolve()
    dagster_home = data_dir / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_yaml = Path("dagster.yaml")
    if instance_yaml.exists() and not (dagster_home / "dagster.yaml").exists():
        shutil.copy(instance_yaml, dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "POSTER_API_URL": settings.api_url,
        "POSTER_DATA_DIR": str(data_dir),
    }
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        if account not in instance.get_dynamic_partitions(ACCOUNTS):
            instance.add_dynamic_partitions(ACCOUNTS, [account])
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster),
        "dev",
        "-m",
        "poster_pipeline.definitions",
        "-h",
        host,
        "-p",
        str(port),
    ]
    return subprocess.call(command, env=env)
