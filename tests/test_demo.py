"""The newcomer's path: `poster-pipeline demo --once`, and the demo's Dagster UI coming up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from poster_pipeline.catalogue import ENTITIES
from tests.databases import fresh_engine, postgres_url

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ASSETS_QUERY = "{ assetNodes { assetKey { path } partitionKeys } }"


def test_demo_starts_the_dagster_ui_with_every_entity_asset(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [CLI, "demo", "--port", str(port), "--emulator-port", "0"],
        cwd=tmp_path,
        env=demo_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        nodes = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": ASSETS_QUERY}, timeout=5
                )
                nodes = answer.json()["data"]["assetNodes"]
                if nodes:
                    break
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            time.sleep(1)
        assert nodes, "the Dagster UI answered with the code location's assets in time"
        poster = {"/".join(n["assetKey"]["path"]): n["partitionKeys"] for n in nodes}
        for spec in ENTITIES:
            assert poster[f"poster/{spec.name}"] == ["api-demo"]
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
