"""The newcomer's demo: the emulator with a demo restaurant, the warehouse, and Dagster.

``poster-pipeline demo --once`` syncs everything once in this process and prints what landed;
``poster-pipeline demo`` starts the webhook receiver and Dagster's webserver and daemon
(``dagster dev``) on the same setup, with the emulator sending its webhooks to the receiver, and
leaves the clicking to you.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import requests
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

__all__ = [
    "SyncSummary",
    "connect_demo_account",
    "format_summary",
    "run_ui",
    "start_changes",
    "sync_once",
]


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


def _dagster_home(data_dir: Path) -> Path:
    """The demo's Dagster instance folder, with this project's dagster.yaml when there is one."""
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    if Path("dagster.yaml").exists() and not (home / "dagster.yaml").exists():
        shutil.copy("dagster.yaml", home / "dagster.yaml")
    return home


def run_ui(
    settings: Settings,
    emulator: RunningEmulator,
    account: str,
    *,
    host: str,
    port: int,
    receiver_port: int,
) -> int:
    """Run the webhook receiver and ``dagster dev`` on the demo setup until interrupted."""
    data_dir = settings.data_dir.resolve()
    dagster_home = _dagster_home(data_dir)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        if account not in instance.get_dynamic_partitions(ACCOUNTS):
            instance.add_dynamic_partitions(ACCOUNTS, [account])
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "POSTER_API_URL": settings.api_url,
        "POSTER_DATA_DIR": str(data_dir),
        "POSTER_APPLICATION_SECRET": emulator.config.application_secret,
    }
    bin_dir = Path(sys.executable).parent
    receiver = subprocess.Popen(
        [
            str(bin_dir / "poster-pipeline"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(receiver_port),
        ],
        env=env,
    )
    try:
        dagster = [str(bin_dir / "dagster"), "dev", "-m", "poster_pipeline.definitions"]
        return subprocess.call([*dagster, "-h", host, "-p", str(port)], env=env)
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)


def start_changes(emulator: RunningEmulator, account: str, every: float) -> threading.Event:
    """Change a random ingredient's stock in the emulator every ``every`` seconds, so webhook-
    driven partial syncs show up in the UI; set the returned event to stop."""
    stop = threading.Event()
    randomizer = random.Random(1)

    def loop() -> None:
        with requests.Session() as session:
            while not stop.wait(every):
                listed = session.get(f"{emulator.url}/control/{account}/ingredients", timeout=10)
                ingredient = randomizer.choice(listed.json())
                left = f"{randomizer.uniform(0, 500):.5f}"
                session.patch(
                    f"{emulator.url}/control/{account}/ingredients/{ingredient['ingredient_id']}",
                    json={"ingredient_left": left},
                    timeout=10,
                )

    threading.Thread(target=loop, name="demo-changes", daemon=True).start()
    return stop
