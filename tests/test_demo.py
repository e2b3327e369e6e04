"""The newcomer's path: `poster-pipeline demo --once`, and the demo's Dagster UI coming up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.warehouse.schema import webhook_events
from tests.databases import fresh_engine, postgres_url
from tests.processes import answers, free_port, start, stop, wait_until

CLI = str(Path(sys.executable).with_name("poster-pipeline"))


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTER_", "DAGSTER_"))}
    return {**env, "POSTER_DATA_DIR": str(tmp_path / "data"), **extra}


def assert_every_entity_synced(output: str) -> None:
    rows = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.strip()}
    for spec in ENTITIES:
        fetched, active, _deleted = (int(n) for n in rows[spec.name])
        assert fetched > 0 and active > 0, spec.name


def test_demo_once_syncs_everything_into_the_embedded_warehouse(tmp_path):
    result = subprocess.run(
        [CLI, "demo", "--once", "--emulator-port", "0"],
        cwd=tmp_path,
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_every_entity_synced(result.stdout)
    assert (tmp_path / "data" / "warehouse.db").exists()


def test_demo_once_works_the_same_on_postgresql(tmp_path):
    fresh_engine("postgresql", tmp_path, "_demo").dispose()
    env = demo_env(tmp_path, POSTER_DATABASE_URL=postgres_url("_demo"))
    result = subprocess.run(
        [CLI, "demo", "--once", "--emulator-port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_every_entity_synced(result.stdout)


ASSETS_QUERY = "{ assetNodes { assetKey { path } partitionKeys } }"


def asset_nodes(port: int) -> list[dict] | None:
    try:
        answer = requests.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": ASSETS_QUERY}, timeout=5
        )
        return answer.json()["data"]["assetNodes"] or None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def settled_events(warehouse: Path) -> list[str]:
    if not warehouse.exists():
        return []
    engine = sa.create_engine(f"sqlite:///{warehouse}")
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("webhook_events"):
                return []
            return list(conn.execute(sa.select(webhook_events.c.status)).scalars())
    finally:
        engine.dispose()


def test_demo_runs_dagster_and_webhook_driven_syncs(tmp_path):
    port, emulator_port, receiver_port = free_port(), free_port(), free_port()
    process = start(
        [
            "poster-pipeline",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--receiver-port",
            str(receiver_port),
        ],
        demo_env(tmp_path),
        tmp_path / "demo.log",
        cwd=tmp_path,
    )
    try:
        found: list[list[dict]] = []

        def ui_lists_assets() -> bool:
            nodes = asset_nodes(port)
            if nodes:
                found.append(nodes)
            return bool(nodes)

        wait_until(ui_lists_assets, 150, "the Dagster UI with the code location's assets", 1)
        nodes = found[-1]
        poster = {"/".join(n["assetKey"]["path"]): n["partitionKeys"] for n in nodes}
        for spec in ENTITIES:
            assert poster[f"poster/{spec.name}"] == ["api-demo"]

        wait_until(answers(f"http://127.0.0.1:{receiver_port}/health/ready"), 60, "the receiver")
        requests.patch(
            f"http://127.0.0.1:{emulator_port}/control/api-demo/ingredients/1",
            json={"ingredient_name": "Мёд"},
            timeout=5,
        ).raise_for_status()
        wait_until(
            lambda: settled_events(tmp_path / "data" / "warehouse.db") == ["done"],
            150,
            "the demo's webhook settled by a partial sync",
            step=1,
        )
    except AssertionError:
        print((tmp_path / "demo.log").read_text()[-5000:])
        raise
    finally:
        stop(process, timeout=60)


def test_changes_every_keeps_changing_the_demo_data():
    from poster_pipeline.demo import start_changes
    from poster_pipeline.emulator import EmulatorConfig, start_in_thread

    with start_in_thread(EmulatorConfig()) as emulator:
        stop_changes = start_changes(emulator, "api-demo", every=0.1)
        try:
            wait_until(
                lambda: (
                    len(requests.get(f"{emulator.url}/control/webhooks", timeout=5).json()) >= 2
                ),
                timeout=30,
                what="two changes announced by webhooks",
            )
        finally:
            stop_changes.set()
