"""The newcomer's path: `poster-pipeline demo --once`, and the demo's services coming up,
answering, and stopping cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.demo_lock import (
    DemoRunning,
    demo_lock,
    running_demo,
    warehouse_fingerprint,
)
from poster_pipeline.demo_ports import PortTaken, choose_port, port_is_free
from poster_pipeline.warehouse.schema import accounts, webhook_events
from tests.databases import fresh_engine, postgres_url
from tests.processes import descendants, free_port, running, start, stop, wait_until

REPO = Path(__file__).resolve().parents[1]
BANNER_END = "Ctrl-C stops everything."

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
        [CLI, "demo", "--once"],  # its emulator takes a free port: nothing else is listening
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


def banner(log: Path) -> str | None:
    text = log.read_text()
    return text if BANNER_END in text else None


def oauth_connected(warehouse: Path, account: str) -> str | None:
    engine = sa.create_engine(f"sqlite:///{warehouse}")
    try:
        with engine.connect() as conn:
            query = sa.select(accounts.c.auth_method).where(accounts.c.account == account)
            return conn.execute(query).scalar_one_or_none()
    finally:
        engine.dispose()


def interrupt_and_check_clean_exit(process: subprocess.Popen, log: Path, ports: list[int]):
    """Ctrl-C as a terminal sends it (SIGINT to the foreground process group): exit 0, no
    traceback, no process left behind, every port free again."""
    children = descendants(process.pid)
    assert children, "the demo runs its services as child processes"
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=90)
    output = log.read_text()
    assert process.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    wait_until(
        lambda: not any(running(pid) for pid in children), 10, "the demo's children to be gone"
    )
    for port in ports:
        assert port_is_free("127.0.0.1", port), port


def test_demo_runs_dagster_webhooks_sync_api_oauth_and_stops_on_ctrl_c(tmp_path):
    port, emulator_port, receiver_port = free_port(), free_port(), free_port()
    log = tmp_path / "demo.log"
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
        log,
        cwd=tmp_path,
    )
    children: list[int] = []
    try:
        # The banner comes once the UI and the receiver answer.
        wait_until(lambda: banner(log) is not None, 150, "the demo's banner", 1)
        children = descendants(process.pid)
        nodes = asset_nodes(port)
        assert nodes, "the Dagster UI answers once the banner is out"
        poster = {"/".join(n["assetKey"]["path"]): n["partitionKeys"] for n in nodes}
        for spec in ENTITIES:
            assert poster[f"poster/{spec.name}"] == ["api-demo"]

        # The sync API is on, with the key the banner shows in a ready curl command.
        printed = banner(log) or ""
        [key] = re.findall(r"Authorization: Bearer ([^']+)'", printed)
        sync = f"http://127.0.0.1:{receiver_port}/api/poster/sync"
        assert requests.get(sync, timeout=10).status_code == 401
        answer = requests.get(
            sync, params={"account": "api-demo"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200, answer.text
        assert set(answer.json()["status"]) == {spec.name for spec in ENTITIES}

        # OAuth against the emulator: the printed connect URL, followed as a browser would.
        [connect] = re.findall(r"(http://\S+/api/poster/oauth/authorize)", printed)
        with requests.Session() as browser:
            page = browser.get(connect, timeout=30)
        assert page.status_code == 200, page.text
        assert oauth_connected(tmp_path / "data" / "warehouse.db", "api-demo") == "oauth"

        # `demo --once` beside it, same data folder, no port given: it works, in a temporary
        # data folder, and leaves the running demo's warehouse alone.
        once = subprocess.run(
            [CLI, "demo", "--once"],
            cwd=tmp_path,
            env=demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert once.returncode == 0, once.stderr[-3000:]
        assert "Traceback" not in once.stderr
        assert "temporary data folder" in once.stdout
        assert "sqlite:///" + str(tmp_path / "data") not in once.stdout
        assert_every_entity_synced(once.stdout)
        assert oauth_connected(tmp_path / "data" / "warehouse.db", "api-demo") == "oauth"

        # A second full demo on the same data folder says what to do instead.
        second = subprocess.run(
            [CLI, "demo", "--port", "0", "--emulator-port", "0", "--receiver-port", "0"],
            cwd=tmp_path,
            env=demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "a demo is running from this data folder" in second.stderr
        assert "POSTER_DATA_DIR" in second.stderr and "Traceback" not in second.stderr

        # A change in the emulator reaches the warehouse through webhook, queue and Dagster.
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

        interrupt_and_check_clean_exit(process, log, [port, emulator_port, receiver_port])
        # The drain run was still claiming (it does for minutes): Ctrl-C cancelled it, as the
        # UI's Terminate would, rather than leave it running or kill it mid-step.
        with dg.DagsterInstance.from_config(str(tmp_path / "data" / "dagster")) as instance:
            drains = instance.get_runs(filters=dg.RunsFilter(tags={"poster/sync": "partial"}))
            assert [run.status for run in drains] == [dg.DagsterRunStatus.CANCELED]
    except AssertionError:
        print(log.read_text()[-5000:])
        raise
    finally:
        stop(process, timeout=60)
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_make_demo_stops_quietly_on_ctrl_c(tmp_path):
    """Under `make demo` the terminal's Ctrl-C reaches make too; make then dies of SIGINT as
    it always does, but prints no error of the demo's (`make: *** ... Error 1`)."""
    log = tmp_path / "make.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(REPO),
                "demo",
                f"VENV={Path(sys.executable).parent.parent}",
                "DEMO_ARGS=--port 0 --emulator-port 0 --receiver-port 0",
            ],
            env=demo_env(tmp_path),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    children: list[int] = []
    try:
        wait_until(lambda: banner(log) is not None, 150, "the demo's banner", 1)
        children = descendants(process.pid)
        ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", banner(log) or "")]
        interrupt_and_check_clean_exit_of_make(process, log, children, ports)
    finally:
        stop(process, timeout=60)
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def interrupt_and_check_clean_exit_of_make(process, log: Path, children: list[int], ports):
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=90)
    output = log.read_text()
    assert process.returncode == -signal.SIGINT, output[-3000:]  # make re-raises SIGINT
    assert "make: ***" not in output and "Traceback" not in output, output[-3000:]
    assert "demo stopped" in output
    wait_until(
        lambda: not any(running(pid) for pid in children), 10, "the demo's children to be gone"
    )
    for port in set(ports):
        assert port_is_free("127.0.0.1", port), port


def test_loading_the_definitions_warns_about_nothing_of_ours():
    """Every Dagster process of the demo loads the code location: a warning raised by our own
    modules would be printed again and again."""
    script = (
        "import json, warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import poster_pipeline.definitions as d\n"
        "    d.defs.get_repository_def()\n"
        "print(json.dumps([[w.category.__name__, w.filename, str(w.message)] for w in caught]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTER_", "DAGSTER_"))}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    caught = json.loads(result.stdout.splitlines()[-1])
    ours = [
        warning
        for warning in caught
        if Path(warning[1]).resolve().is_relative_to(REPO)
        and not Path(warning[1]).resolve().is_relative_to(Path(sys.prefix).resolve())
    ]
    assert ours == []


def test_demo_once_refuses_to_share_a_running_demos_database(tmp_path):
    """With the embedded warehouse `--once` moves to a temporary folder (see the test above);
    a database named by POSTER_DATABASE_URL cannot move, so sharing it is refused."""
    url = postgres_url("_demo_shared")
    with demo_lock(tmp_path / "data", ui_url="http://127.0.0.1:3000", warehouse_url=url):
        result = subprocess.run(
            [CLI, "demo", "--once"],
            cwd=tmp_path,
            env=demo_env(tmp_path, POSTER_DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "a demo is running from this data folder" in result.stderr
    assert "POSTER_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
    assert "Poster emulator" not in result.stdout  # refused before anything started


def test_a_taken_usual_port_gives_way_to_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        usual = taken.getsockname()[1]
        choice = choose_port("127.0.0.1", None, usual=usual, what="Dagster UI", option="--port")
        assert choice.port != usual and port_is_free("127.0.0.1", choice.port)
        assert choice.note == (
            f"Dagster UI: port {usual} is in use, using {choice.port} (--port chooses)"
        )
        with pytest.raises(PortTaken, match=f"port {usual} .* in use.*--port"):
            choose_port("127.0.0.1", usual, usual=3000, what="Dagster UI", option="--port")
    assert choose_port("127.0.0.1", None, usual=usual, what="UI", option="--port").note is None


def test_one_demo_per_data_folder(tmp_path):
    assert running_demo(tmp_path) is None
    with demo_lock(tmp_path, ui_url="http://127.0.0.1:3000", warehouse_url="sqlite:///x"):
        found = running_demo(tmp_path)
        assert found is not None
        assert (found.pid, found.ui_url) == (os.getpid(), "http://127.0.0.1:3000")
        # A fingerprint of the warehouse URL, which may hold a password, never the URL.
        assert found.warehouse == warehouse_fingerprint("sqlite:///x")
        assert "sqlite" not in (tmp_path / "demo.lock").read_text()
        second = demo_lock(tmp_path, ui_url="http://127.0.0.1:3001", warehouse_url="y")
        with pytest.raises(DemoRunning, match=re.escape("http://127.0.0.1:3000")), second:
            pass
    assert running_demo(tmp_path) is None


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
