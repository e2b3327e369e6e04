"""The emulator's webhooks: Poster's payload and signature, retries, per-account blocking."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from poster_pipeline.emulator import (
    EmulatorAccount,
    EmulatorConfig,
    RunningEmulator,
    start_in_thread,
)
from poster_pipeline.poster.webhooks import parse_webhook, verify

SECRET = "hook-secret"
RETRIES = 3
OTHER = EmulatorAccount.derive("other-cafe", seed=1, number=700700)


@dataclass
class Sink:
    """A webhook receiver answering scripted statuses per account (then 200), recording
    every body it receives."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> int:
        with self.lock:
            self.bodies.append(body)
            statuses = self.script.get(body["account"], [])
            return statuses.pop(0) if statuses else 200

    def fail_next(self, times: int, status: int = 500, account: str = "api-demo") -> None:
        with self.lock:
            self.script[account] = [status] * times

    def received(self, object_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.bodies if b["object_id"] == object_id]


def serve_sink() -> tuple[Sink, ThreadingHTTPServer]:
    sink: Sink

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            status = sink.answer(json.loads(raw))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink = Sink(f"http://127.0.0.1:{server.server_address[1]}/hooks")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return sink, server


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    receiver, server = serve_sink()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def emulator(sink: Sink) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        accounts=(EmulatorAccount.derive("api-demo", seed=1, number=813932), OTHER),
        seed=1,
        application_secret=SECRET,
        webhook_url=sink.url,
        webhook_retry_delays=(0.05,) * RETRIES,
    )
    with start_in_thread(config) as running:
        yield running


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def control(emulator: RunningEmulator, verb: str, path: str, body: Any = None) -> Any:
    answer = requests.request(verb, f"{emulator.control_url}{path}", json=body, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def delivery(emulator: RunningEmulator, hook_id: int) -> dict[str, Any]:
    log = control(emulator, "GET", "/webhooks")
    return next(d for d in log if d["id"] == hook_id)


def finished(emulator: RunningEmulator, hook_id: int) -> dict[str, Any] | None:
    hook = delivery(emulator, hook_id)
    return hook if hook["status"] != "pending" else None


def test_change_sends_a_signed_poster_webhook(emulator: RunningEmulator, sink: Sink) -> None:
    before = int(time.time())
    change = control(emulator, "PATCH", "/api-demo/workshops/1", {"workshop_name": "Бар 2"})
    hook = wait_until(lambda: finished(emulator, change["webhook"]["id"]))
    assert hook["delivered"] is True and hook["attempts"] == 1 and hook["last_status"] == 200
    (body,) = [b for b in sink.received(1) if b["object"] == "workshop"]
    assert list(body) == [
        "account",
        "account_number",
        "object",
        "object_id",
        "action",
        "time",
        "verify",
    ]
    assert body["account"] == "api-demo" and body["account_number"] == "813932"
    assert body["object_id"] == 1 and body["action"] == "changed"
    assert isinstance(body["time"], str) and int(body["time"]) >= before
    verify(parse_webhook(body), SECRET)


def test_retried_after_a_500_with_the_same_time_and_verify(
    emulator: RunningEmulator, sink: Sink
) -> None:
    sink.fail_next(1)
    change = control(emulator, "PATCH", "/api-demo/storages/2", {"storage_adress": "Киев"})
    hook = wait_until(lambda: finished(emulator, change["webhook"]["id"]))
    assert hook["delivered"] is True and hook["attempts"] == 2
    first, second = [b for b in sink.received(2) if b["object"] == "storage"]
    assert first == second  # time and verify of the first send
    verify(parse_webhook(second), SECRET)


def test_newer_hooks_wait_behind_an_undelivered_one(emulator: RunningEmulator, sink: Sink) -> None:
    sink.fail_next(2)
    older = control(emulator, "PATCH", "/api-demo/ingredients/3", {"hidden": 1})
    newer = control(emulator, "PATCH", "/api-demo/ingredients/4", {"hidden": 1})
    wait_until(lambda: finished(emulator, newer["webhook"]["id"]))
    assert delivery(emulator, older["webhook"]["id"])["attempts"] == 3
    with sink.lock:
        order = [(b["object_id"]) for b in sink.bodies if b["object"] == "ingredient"]
    assert order == [3, 3, 3, 4]


def test_given_up_after_the_last_retry_then_the_queue_moves_on(
    emulator: RunningEmulator, sink: Sink
) -> None:
    sink.fail_next(1 + RETRIES, status=503)
    dropped = control(emulator, "PATCH", "/api-demo/product_categories/1", {"fiscal": 1})
    after = control(emulator, "PATCH", "/api-demo/product_categories/2", {"fiscal": 1})
    hook = wait_until(lambda: finished(emulator, dropped["webhook"]["id"]))
    assert hook["status"] == "failed" and hook["delivered"] is False
    assert hook["attempts"] == 1 + RETRIES and hook["last_status"] == 503
    assert wait_until(lambda: finished(emulator, after["webhook"]["id"]))["delivered"] is True


def test_accounts_have_separate_queues(sink: Sink) -> None:
    config = EmulatorConfig(
        accounts=(EmulatorAccount.derive("api-demo", seed=1, number=813932), OTHER),
        seed=1,
        application_secret=SECRET,
        webhook_url=sink.url,
        webhook_retry_delays=(60,),  # the blocked hook stays blocked for this whole test
    )
    sink.fail_next(1, account="api-demo")
    with start_in_thread(config) as emulator:
        blocked = control(emulator, "PATCH", "/api-demo/workshops/2", {"workshop_name": "Гриль"})
        waiting = control(emulator, "PATCH", "/api-demo/workshops/3", {"workshop_name": "Пиво"})
        free = control(emulator, "PATCH", "/other-cafe/workshops/2", {"workshop_name": "Гриль"})
        assert wait_until(lambda: finished(emulator, free["webhook"]["id"]))["delivered"]
        wait_until(lambda: delivery(emulator, blocked["webhook"]["id"])["attempts"] == 1)
        assert delivery(emulator, blocked["webhook"]["id"])["status"] == "pending"
        assert delivery(emulator, waiting["webhook"]["id"])["attempts"] == 0


def test_arbitrary_hook_with_data_sent_as_a_signed_string(
    emulator: RunningEmulator, sink: Sink
) -> None:
    data = {"type": 1, "element_id": 39, "storage_id": 1, "value_relative": -2.5}
    sent = requests.post(
        f"{emulator.control_url}/webhooks/send",
        json={
            "account": "api-demo",
            "object": "stock",
            "object_id": 39,
            "action": "changed",
            "data": data,
        },
        timeout=10,
    )
    assert sent.status_code == 202, sent.text
    wait_until(lambda: finished(emulator, sent.json()["id"]))
    (body,) = [b for b in sink.received(39) if b["object"] == "stock"]
    assert isinstance(body["data"], str) and json.loads(body["data"]) == data
    event = parse_webhook(body)
    assert event.data == body["data"]
    verify(event, SECRET)


def test_webhook_url_changes_at_run_time(emulator: RunningEmulator, sink: Sink) -> None:
    second, server = serve_sink()
    try:
        assert control(emulator, "PUT", "/webhook-url", {"url": second.url}) == {"url": second.url}
        change = control(emulator, "POST", "/api-demo/workshops", {"workshop_name": "Терраса"})
        wait_until(lambda: finished(emulator, change["webhook"]["id"]))
        assert [b["action"] for b in second.bodies] == ["added"]
    finally:
        control(emulator, "PUT", "/webhook-url", {"url": sink.url})
        server.shutdown()
        server.server_close()


def test_bad_control_webhook_requests(emulator: RunningEmulator) -> None:
    def status(verb: str, path: str, body: Any) -> int:
        return requests.request(
            verb, f"{emulator.control_url}{path}", json=body, timeout=10
        ).status_code

    assert status("PUT", "/webhook-url", {"url": "ftp://x"}) == 422
    hook = {"account": "api-demo", "object": "product", "object_id": "x", "action": "added"}
    assert status("POST", "/webhooks/send", hook) == 422
    assert status("POST", "/webhooks/send", {**hook, "object_id": 1, "account": "nobody"}) == 404


def test_finished_deliveries_can_be_forgotten(emulator: RunningEmulator) -> None:
    change = control(emulator, "PATCH", "/other-cafe/storages/1", {"storage_name": "Склад"})
    wait_until(lambda: finished(emulator, change["webhook"]["id"]))
    assert control(emulator, "DELETE", "/webhooks")["cleared"] >= 1
    assert all(d["status"] == "pending" for d in control(emulator, "GET", "/webhooks"))
