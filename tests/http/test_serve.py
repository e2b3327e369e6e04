"""``poster-pipeline serve``: its refusals, and a real server receiving hooks over TCP."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from poster_pipeline.emulator import EmulatorConfig, start_in_thread
from poster_pipeline.http.cli import serve_command
from tests.http.deliveries import SECRET, WEBHOOKS, hook, stored, wait_for


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
    assert rows["stock"].ignore_reason == "object stock is not synced"
    assert rows["stock"].payload["data"] == '{"value_relative":-2}'
    assert rows["transaction"].ignore_reason == "object transaction is not synced"
