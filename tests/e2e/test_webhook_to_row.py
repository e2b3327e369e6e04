"""End to end with the real processes: a change in the emulator reaches the warehouse row.

emulator (signed webhook) → `poster-pipeline serve` (queue) → `dagster-daemon` (sensor →
webhook_drain run) → PostgreSQL. Everything is polled with a deadline; nothing sleeps a fixed
time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.demo import sync_once
from poster_pipeline.emulator import EmulatorAccount
from poster_pipeline.settings import Settings
from poster_pipeline.warehouse.accounts import AccountStore, TokenCipher
from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.schema import entity_table, webhook_events
from tests.databases import fresh_engine, postgres_url
from tests.processes import answers, clean_env, free_port, start, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-application-secret"
SEED = 42
ACCOUNT = EmulatorAccount.derive("api-demo", SEED, 813932)


@dataclass
class Stack:
    emulator_url: str
    warehouse: sa.Engine
    logs: Path
    dagster_home: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("e2e")
    fresh_engine("postgresql", tmp, "_e2e").dispose()  # migrated and empty
    warehouse_url = postgres_url("_e2e")
    token_key = Fernet.generate_key().decode()
    warehouse = create_warehouse_engine(warehouse_url)
    AccountStore(warehouse, TokenCipher(token_key)).add(
        ACCOUNT.name, ACCOUNT.token, now=datetime.now(UTC)
    )
    dagster_home = tmp / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    emulator_port, receiver_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    env = clean_env(
        POSTER_DATABASE_URL=warehouse_url,
        POSTER_TOKEN_KEY=token_key,
        POSTER_API_URL=f"{emulator_url}/api",
        POSTER_APPLICATION_SECRET=SECRET,
        POSTER_DATA_DIR=str(tmp / "data"),
        DAGSTER_HOME=str(dagster_home),
    )
    emulator_argv = [
        "poster-pipeline",
        "emulator",
        "--port",
        str(emulator_port),
        "--seed",
        str(SEED),
        "--webhook-url",
        f"http://127.0.0.1:{receiver_port}/api/poster/webhooks",
        "--application-secret",
        SECRET,
        "--webhook-retry-delays",
        "0.5,1,2,4,8",
    ]
    processes = [
        start(["poster-pipeline", "serve", "--port", str(receiver_port)], env, tmp / "serve.log"),
        start(emulator_argv, env, tmp / "emulator.log"),
    ]
    try:
        wait_until(answers(f"http://127.0.0.1:{receiver_port}/health/ready"), 60, "the receiver")
        wait_until(answers(f"{emulator_url}/control/health"), 60, "the emulator")
        # A first full sync, so smart sync has nothing to do and only webhooks move rows.
        settings = Settings(
            api_url=f"{emulator_url}/api",
            database_url=warehouse_url,
            token_key=token_key,
            data_dir=tmp / "data",
        )
        synced, _ = sync_once(settings, ACCOUNT.name)
        assert synced
        daemon = ["dagster-daemon", "run", "-m", "poster_pipeline.definitions"]
        processes.append(start(daemon, env, tmp / "daemon.log", cwd=tmp))
        yield Stack(emulator_url, warehouse, tmp, dagster_home)
    finally:
        for process in reversed(processes):
            stop(process)
        warehouse.dispose()


def settled_runs(stack: Stack, ingredient_id: int) -> list[tuple[str, str | None]]:
    with stack.warehouse.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(webhook_events.c.status, webhook_events.c.settled_by_run).where(
                    webhook_events.c.object == "ingredient",
                    webhook_events.c.object_id == ingredient_id,
                )
            )
        ]


def ingredient_name(stack: Stack, ingredient_id: int) -> str | None:
    table = entity_table("ingredients")
    with stack.warehouse.connect() as conn:
        return conn.execute(
            sa.select(table.c.ingredient_name).where(
                table.c.account == ACCOUNT.name, table.c.ingredient_id == ingredient_id
            )
        ).scalar_one_or_none()


def test_a_change_in_poster_reaches_the_row_through_webhook_queue_sensor_and_run(stack):
    listed = requests.get(f"{stack.emulator_url}/control/api-demo/ingredients", timeout=5).json()
    ingredient_id = next(i["ingredient_id"] for i in listed if not i["delete"])
    requests.patch(
        f"{stack.emulator_url}/control/api-demo/ingredients/{ingredient_id}",
        json={"ingredient_name": "Шафран e2e"},
        timeout=5,
    ).raise_for_status()

    try:
        wait_until(
            lambda: [status for status, _ in settled_runs(stack, ingredient_id)] == ["done"],
            timeout=180,
            what="the webhook event settled by a run",
            step=0.5,
        )
    except AssertionError:
        for log in sorted(stack.logs.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")
        raise
    assert ingredient_name(stack, ingredient_id) == "Шафран e2e"
    [(_, run_id)] = settled_runs(stack, ingredient_id)
    with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        [recorded] = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["poster", "ingredients"]), asset_partitions=[ACCOUNT.name]
            ),
            limit=1,
        ).records
    assert run is not None and run.job_name == "webhook_drain"
    assert run.tags["poster/sync"] == "partial"
    # The drain run records the partial sync as a materialization of the account's partition.
    assert recorded.run_id == run_id
