"""``poster-pipeline serve``: its refusals, a real server receiving hooks over TCP, and its
workers giving the port back when the server is killed."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from poster_pipeline.emulator import EmulatorConfig, start_in_thread
from poster_pipeline.http.cli import serve_command
from tests.http.conftest import serving
from tests.http.deliveries import SECRET, WEBHOOKS, hook, stored, wait_for
from tests.processes import descendants, running


def serve(env: dict[str, str], *args: str):
    return CliRunner().invoke(serve_command, list(args), env=env, catch_exceptions=False)


def test_serve_needs_the_application_secret(tmp_path: Path):
    result = serve({"POSTER_APPLICATION_SECRET": "", "POSTER_DATA_DIR": str(tmp_path)})
    assert result.exit_code != 0
    assert "POSTER_APPLICATION_SECRET is not set" in result.output


def test_serve_needs_a_migrated_warehouse(tmp_path: Path):
    env = {
        "POSTER_APPLICATION_SECRET": SECRET,
        "POSTER_DATA_DIR": str(tmp_path),
        "POSTER_DATABASE_URL": "",
    }
    result = serve(env)
    assert result.exit_code != 0
    assert "no webhook_events table" in result.output
    assert "run `poster-pipeline db upgrade` first" in result.output


def test_serve_says_when_the_warehouse_is_unreachable():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]  # nothing listens once the block ends
    url = f"postgresql://receiver:hunter2@127.0.0.1:{closed_port}/warehouse"
    result = serve({"POSTER_APPLICATION_SECRET": SECRET, "POSTER_DATABASE_URL": url})
    assert result.exit_code != 0
    assert "cannot reach the warehouse" in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize("served", [1, 2], indirect=True, ids=["one worker", "two workers"])
def test_a_served_receiver_queues_a_signed_hook(server: str, engine: Engine):
    answer = httpx.post(f"{server}{WEBHOOKS}", json=hook(object="category", object_id=12))
    assert (answer.status_code, answer.json()) == (200, {"status": "accept"})
    [row] = stored(engine)
    assert (row.entity, row.object_id, row.status) == ("product_categories", 12, "pending")


def test_a_served_receiver_refuses_a_huge_content_length_before_the_body(server: str):
    url = httpx.URL(server)
    with socket.create_connection((url.host, url.port or 80), timeout=5) as sock:
        sock.sendall(
            f"POST {WEBHOOKS} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**9}\r\n\r\n{{".encode()
        )
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 413")


def test_hooks_from_the_poster_emulator_are_queued(server: str, engine: Engine):
    config = EmulatorConfig(
        application_secret=SECRET, webhook_url=f"{server}{WEBHOOKS}", webhook_retry_delays=(0.2,)
    )
    sends = [
        {"object": "ingredient", "object_id": 91, "action": "changed"},
        {"object": "stock", "object_id": 39, "action": "changed", "data": {"value_relative": -2}},
        {"object": "transaction", "object_id": 5, "action": "closed"},
    ]
    with start_in_thread(config) as emulator:
        for send in sends:
            answer = httpx.post(
                f"{emulator.control_url}/webhooks/send", json={"account": "api-demo", **send}
            )
            assert answer.status_code == 202, answer.text

        def delivered() -> bool:
            log = httpx.get(f"{emulator.control_url}/webhooks").json()
            return [d["status"] for d in log] == ["delivered"] * len(sends)

        wait_for(delivered, timeout=10, what="the emulator delivered its hooks")
    rows = {row.object: row for row in stored(engine)}
    assert (rows["ingredient"].status, rows["ingredient"].entity) == ("pending", "ingredients")
    assert rows["stock"].ignore_reason == "stock hook without data.storage_id"
    assert rows["stock"].payload["data"] == '{"value_relative":-2}'
    assert rows["transaction"].ignore_reason == "object transaction is not synced"


def _port_is_free(port: int) -> bool:
    try:
        # As a restarted server binds it (SO_REUSEADDR, like uvicorn).
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        return False
    return True


def test_workers_give_the_port_back_when_serve_is_killed(engine: Engine, tmp_path: Path):
    # SIGKILL leaves uvicorn's supervisor no chance to stop its workers; each worker sees its
    # supervisor go (poster_pipeline.http.worker) and shuts down.
    log = tmp_path / "killed.log"
    with serving(2, log, "--no-access-log") as served:
        supervisor = served.process.pid
        port = httpx.URL(served.url).port
        assert port is not None
        wait_for(
            lambda: log.read_text().count("Application startup complete") == 2,
            timeout=30,
            what="both workers started",
        )
        children = descendants(supervisor)
        assert len(children) >= 2, children

        served.process.send_signal(signal.SIGKILL)
        served.process.wait()
        seconds = wait_for(lambda: _port_is_free(port), timeout=15, what="the port is free")
        wait_for(
            lambda: not any(running(pid) for pid in children),
            timeout=15,
            what=f"no process of the killed serve survives ({children})",
        )

    assert seconds < 5, f"the port was free only {seconds:.1f} s after the kill"
    assert log.read_text().count(f"the serve process (pid {supervisor}) is gone") == 2
    # What it is all for: serve starts again on the same port.
    with serving(1, tmp_path / "restarted.log", "--no-access-log", port=port) as restarted:
        answer = httpx.post(f"{restarted.url}{WEBHOOKS}", json=hook(object="category"))
        assert answer.status_code == 200
