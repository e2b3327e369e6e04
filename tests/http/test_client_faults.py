"""What clients do to a real server: leave mid-body, reset the connection, send too slowly.

The contract (issue 11, item 3): each costs one INFO or WARNING line, never a traceback, an
ERROR, a secret or a byte of the body; a body that did not fully arrive is never stored and
never answered 2xx; a body that does not arrive in time gets 408 and a closed connection.
The sockets are raw, so the request can stop exactly where a broken client stops.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy.engine import Engine

from poster_pipeline.http import ReceiverConfigError, ReceiverSettings, create_app
from poster_pipeline.http.client_faults import BODY_TIMEOUT_SECONDS
from tests.http.conftest import Served
from tests.http.deliveries import SECRET, WEBHOOKS, hook, stored, wait_for

MARKER = "body-content-never-logged"
LEFT = "a client left before its request body was read"
SLOW = "a client sent its request body too slowly"
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data; boundary=xyz"


def _partial_body(content_type: str) -> bytes:
    """The first part of a real webhook body, cut before its end, with ``MARKER`` inside."""
    if content_type == JSON_TYPE:
        return json.dumps(hook(data=json.dumps({"note": MARKER}))).encode()[:60]
    return (
        f'--xyz\r\nContent-Disposition: form-data; name="data"\r\n\r\n{MARKER}\r\n'
        '--xyz\r\nContent-Disposition: form-data; name="acc'
    ).encode()


@contextmanager
def _request_head(
    base: str, *, length: int = 500, content_type: str = JSON_TYPE, expect: bool = False
) -> Iterator[socket.socket]:
    """A connection that has sent a webhook request's headers (announcing ``length`` bytes of
    body) and no body yet."""
    url = httpx.URL(base)
    head = (
        f"POST {WEBHOOKS} HTTP/1.1\r\nHost: receiver\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n" + ("Expect: 100-continue\r\n" if expect else "") + "\r\n"
    )
    with socket.create_connection((url.host, url.port or 80), timeout=10) as sock:
        sock.sendall(head.encode())
        yield sock


def _read_answer(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout`` passes)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        pass
    return received


def _reset(sock: socket.socket) -> None:
    # Linger 0: close() sends RST instead of FIN, as a crashed peer or a middlebox does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# --- a client that leaves mid-body, against `poster-pipeline serve` and its real log ----------


@pytest.mark.parametrize("content_type", [JSON_TYPE, MULTIPART_TYPE], ids=["json", "multipart"])
@pytest.mark.parametrize("ending", ["closes", "resets"])
def test_a_client_that_leaves_mid_body_costs_one_line(
    served: Served, engine: Engine, ending: str, content_type: str
):
    # A reset throws away what the server has not read yet, so the reset client waits for
    # "100 Continue": the app is then certainly reading the body when the connection dies.
    with _request_head(served.url, content_type=content_type, expect=ending == "resets") as sock:
        if ending == "resets":
            _await_continue(sock)
        sock.sendall(_partial_body(content_type))
        if ending == "resets":
            _reset(sock)
    # (leaving the block closes the socket: FIN)

    wait_for(lambda: LEFT in served.log.read_text(), timeout=10, what="the log line")
    answer = httpx.post(f"{served.url}{WEBHOOKS}", json=hook(object="category", object_id=5))
    assert answer.status_code == 200
    [row] = stored(engine)  # the hook that arrived, not the one cut short
    assert row.object_id == 5

    log = served.log.read_text()
    [line] = [line for line in log.splitlines() if LEFT in line]
    assert line.startswith("INFO:"), line
    assert f"POST {WEBHOOKS!r}" in line and "of 500 body bytes" in line
    assert "Traceback" not in log and "ERROR" not in log and "Exception" not in log
    assert MARKER not in log and SECRET not in log


def _read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        assert chunk, f"the server closed the connection after {line!r}"
        line += chunk
    return line


def _await_continue(sock: socket.socket) -> None:
    """Wait for the interim ``100 Continue`` uvicorn sends when the app first reads the body."""
    assert _read_line(sock).startswith(b"HTTP/1.1 100"), "no 100 Continue"
    assert _read_line(sock) == b"\r\n"


# --- a client too slow, against uvicorn in a thread (a short deadline, records in caplog) ----

BODY_TIMEOUT = 1.0

StartServer = Callable[..., str]


@pytest.fixture(params=["httptools", "h11"])
def slow_receiver(
    request: pytest.FixtureRequest, uvicorn_thread: StartServer, engine: Engine
) -> str:
    """A receiver with a 1 s body deadline on a real uvicorn, with each HTTP parser."""
    settings = ReceiverSettings(application_secret=SECRET, body_timeout_seconds=BODY_TIMEOUT)
    return uvicorn_thread(create_app(settings, engine), http=request.param)


def _client_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The receiver's and the server's records, less the access log (one line per request
    whatever its fate, and switched off in production with --no-access-log)."""
    return [
        r
        for r in caplog.records
        if r.name.startswith(("poster_pipeline", "uvicorn")) and r.name != "uvicorn.access"
    ]


@pytest.mark.parametrize("pace", ["stalls", "trickles"])
def test_a_body_too_slow_gets_408_and_a_closed_connection(
    slow_receiver: str, engine: Engine, caplog: pytest.LogCaptureFixture, pace: str
):
    caplog.set_level(logging.INFO)
    start = time.monotonic()
    with _request_head(slow_receiver) as sock:
        sock.sendall(_partial_body(JSON_TYPE))
        if pace == "trickles":
            # One byte every 0.1 s, never idle long enough for an idle timeout to catch it:
            # only a deadline on the whole body does. Stops as soon as the server answers.
            while not select.select([sock], [], [], 0.1)[0]:
                assert time.monotonic() - start < 10, "no answer to a trickling body"
                sock.sendall(b" ")
        answer = _read_answer(sock, timeout=10)
    elapsed = time.monotonic() - start

    status, _, body = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer
    assert b"connection: close" in body.lower()
    assert body.endswith(b'{"status":"error","error":"the body did not arrive within 1 s"}')
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 2, elapsed  # and the server closed it
    assert stored(engine) == []
    [record] = [r for r in _client_records(caplog) if r.levelno >= logging.INFO]
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert SLOW in record.getMessage() and MARKER not in record.getMessage()


def test_a_body_that_arrives_in_parts_within_the_deadline_is_stored(
    slow_receiver: str, engine: Engine, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    body = json.dumps(hook(object_id=41)).encode()
    with _request_head(slow_receiver, length=len(body), expect=True) as sock:
        # The app asked for the body (100 Continue), so the rest arrives in a later message.
        _await_continue(sock)
        sock.sendall(body[:10])
        sock.sendall(body[10:])
        assert _read_line(sock).startswith(b"HTTP/1.1 200")
    [row] = stored(engine)
    assert row.object_id == 41
    assert [r for r in _client_records(caplog) if r.levelno >= logging.INFO] == []


def test_normal_hooks_are_untouched_by_the_deadline(slow_receiver: str, engine: Engine):
    with httpx.Client(base_url=slow_receiver) as client:
        answers = [client.post(WEBHOOKS, json=hook(object_id=n)) for n in range(50, 55)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [row.object_id for row in stored(engine)] == list(range(50, 55))


def test_the_body_deadline_is_ten_seconds_unless_set():
    assert ReceiverSettings(application_secret=SECRET).body_timeout_seconds == 10.0
    assert BODY_TIMEOUT_SECONDS == 10.0
    with pytest.raises(ReceiverConfigError, match="body_timeout_seconds must be positive"):
        ReceiverSettings(application_secret=SECRET, body_timeout_seconds=0)
