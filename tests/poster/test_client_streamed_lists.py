"""The client reads list answers as a stream: what a body that breaks off, a compressed body or
an envelope that is not a plain list turns into. A tiny server sends the exact bytes."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import traceback
from collections.abc import Iterator

import pytest

from poster_pipeline.catalogue import entity
from poster_pipeline.poster import (
    PosterAuthError,
    PosterClient,
    PosterConnectionError,
    PosterError,
    PosterProtocolError,
    PosterTimeoutError,
)
from tests.conftest import fast_settings

WORKSHOPS = entity("workshops")
TOKEN = "813932:" + "c" * 32


def workshop(workshop_id: int) -> dict[str, str]:
    return {"workshop_id": str(workshop_id), "workshop_name": f"Цех {workshop_id}", "delete": "0"}


class RawServer:
    """Answers every connection with ``answer`` (raw HTTP bytes), then closes it, or, with
    ``hang``, keeps it open until the test ends."""

    def __init__(self, answer: bytes, *, hang: bool = False) -> None:
        self.answer, self.hang = answer, hang
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/api"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.answer)
                if self.hang:
                    self._stop.wait(10)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


def http_answer(
    body: bytes, *, length: int | None = None, headers: str = "", status: str = "200 OK"
) -> bytes:
    length = len(body) if length is None else length
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
    return (head + headers + "Connection: close\r\n\r\n").encode() + body


@pytest.fixture
def serve() -> Iterator:
    servers: list[RawServer] = []

    def start(answer: bytes, **kwargs) -> PosterClient:
        servers.append(server := RawServer(answer, **kwargs))
        settings = fast_settings(server.url, read_timeout=0.5, max_retries=0)
        return PosterClient(TOKEN, account="api-demo", settings=settings)

    yield start
    for server in servers:
        server.close()


def envelope(*objects: dict) -> bytes:
    return json.dumps({"response": list(objects)}, ensure_ascii=False).encode()


def test_a_compressed_list_is_decoded(serve):
    body = gzip.compress(envelope(workshop(1), workshop(2)))
    client = serve(http_answer(body, headers="Content-Encoding: gzip\r\n"))
    assert [r.values["workshop_name"] for r in client.iter_list(WORKSHOPS)] == ["Цех 1", "Цех 2"]


def test_an_id_keyed_answer_is_still_a_list(serve):
    body = json.dumps({"response": {"1": workshop(1), "2": workshop(2)}}).encode()
    assert [r.id for r in serve(http_answer(body)).iter_list(WORKSHOPS)] == [1, 2]


def test_an_error_envelope_is_typed_before_any_record(serve):
    body = json.dumps({"error": {"code": 10, "message": "Invalid token"}}).encode()
    with pytest.raises(PosterAuthError):
        next(serve(http_answer(body)).iter_list(WORKSHOPS))


def test_a_body_shorter_than_announced_is_a_connection_error(serve):
    full = envelope(workshop(1), workshop(2), workshop(3))
    cut = full[: full.index(b'{"workshop_id": "3"') + 10]
    with pytest.raises(PosterConnectionError, match="broke off while reading"):
        list(serve(http_answer(cut, length=len(full))).iter_list(WORKSHOPS))


def test_an_error_answer_that_breaks_off_is_a_connection_error(serve):
    body = json.dumps({"error": {"code": 10, "message": "Invalid token"}}).encode()
    answer = http_answer(body[:12], length=len(body), status="400 Bad Request")
    with pytest.raises(PosterConnectionError, match="broke off while reading"):
        list(serve(answer).iter_list(WORKSHOPS))


def test_an_invalid_escape_is_a_protocol_error(serve):
    body = envelope(workshop(1))[:-2] + b', {"workshop_id": "2", "workshop_name": "\\udc00"}]}'
    records = serve(http_answer(body)).iter_list(WORKSHOPS)
    assert next(records).id == 1
    with pytest.raises(PosterProtocolError, match="not JSON"):
        next(records)


def test_a_list_that_stops_being_json_is_a_protocol_error(serve):
    broken = envelope(workshop(1))[:-2] + b", oops]}"
    records = serve(http_answer(broken)).iter_list(WORKSHOPS)
    assert next(records).id == 1
    with pytest.raises(PosterProtocolError, match="broke off or is not JSON"):
        next(records)


def test_an_object_that_cannot_be_typed_is_a_protocol_error(serve):
    body = envelope(workshop(1), {"workshop_id": "seven", "workshop_name": "x"})
    records = serve(http_answer(body)).iter_list(WORKSHOPS)
    assert next(records).id == 1
    with pytest.raises(PosterProtocolError, match="workshop_id"):
        next(records)


def test_an_answer_that_stalls_midway_times_out(serve):
    full = envelope(workshop(1), workshop(2))
    records = serve(http_answer(full[:40], length=len(full)), hang=True).iter_list(WORKSHOPS)
    with pytest.raises(PosterTimeoutError, match="while reading the answer"):
        list(records)


def test_no_token_appears_in_a_streaming_error(serve):
    full = envelope(workshop(1), workshop(2))
    errors: list[PosterError] = []
    for answer in (http_answer(full[:30], length=len(full)), http_answer(full[:-3])):
        with pytest.raises(PosterError) as caught:
            list(serve(answer).iter_list(WORKSHOPS))
        errors.append(caught.value)
    for exc in errors:
        text = "".join(traceback.format_exception(exc)) + repr(exc)
        assert TOKEN.split(":")[1] not in text
