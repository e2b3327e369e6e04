"""Requests that fail because of the client, not us: a body that stops arriving or crawls in.

A sender that closes or resets its connection mid-body, or sends its body too slowly, is a
fact of life on the internet, not a fault of the receiver. Each costs one log line (``INFO``
for a client that left, ``WARNING`` for one too slow), never a traceback, a stored value or a
byte of the body; ``ERROR`` stays for our own faults.

Nothing acknowledged is lost: a body that did not fully arrive is never stored and never
answered 2xx. A client that left gets no answer at all (uvicorn drops what is sent to a closed
connection); one too slow gets 408 and the connection is closed, so it cannot go on to hold
the connection with the rest of its body.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "BodyDeadline",
    "BodyProgress",
    "SlowBody",
    "client_left",
    "too_slow",
]

log = logging.getLogger(__name__)

#: The whole body must arrive within this many seconds of the request's headers. A webhook is
#: under 1 KiB, one round trip even on a poor link, so this is far more than an honest sender
#: needs; senders that publish a timeout wait 5 to 30 s for the whole answer (docs/reliability.md
#: §0). It also bounds how long a slow client can hold a request, and a graceful shutdown.
BODY_TIMEOUT_SECONDS = 10.0

_PROGRESS = "poster_pipeline.body_progress"  # the scope key of a request's BodyProgress


class SlowBody(Exception):
    """The request's body did not fully arrive within the body deadline (answered 408)."""


@dataclass
class BodyProgress:
    """How much of a request's body has arrived, for the one log line about a client."""

    received: int = 0
    complete: bool = False

    @classmethod
    def of(cls, scope: Scope) -> BodyProgress:
        """The progress :class:`BodyDeadline` keeps in ``scope`` (empty outside it)."""
        progress = scope.get(_PROGRESS)
        return progress if isinstance(progress, BodyProgress) else cls()


class BodyDeadline:
    """ASGI middleware: the whole body of an HTTP request must arrive within ``seconds`` of
    the app being called (uvicorn calls it once the headers are in), or the app's read raises
    :class:`SlowBody`.

    Only reading the body is timed: a request whose body has arrived (or that the app never
    reads) runs as long as it needs, and messages after the body pass through untouched.
    """

    def __init__(self, app: ASGIApp, seconds: float = BODY_TIMEOUT_SECONDS) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # asyncio's own timeout, as in DatabaseGate: half the cost of anyio's cancel scope on
        # the hot path (5 µs a request, against 0.4 ms for a whole hook).
        deadline = asyncio.get_running_loop().time() + self.seconds
        progress = scope[_PROGRESS] = BodyProgress()

        async def receive_in_time() -> Message:
            if progress.complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise SlowBody(f"the body did not arrive within {self.seconds:g} s") from None
            if message["type"] == "http.request":
                progress.received += len(message.get("body", b""))
                progress.complete = not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)


def _describe(request: Request) -> str:
    progress = BodyProgress.of(request.scope)
    expected = request.headers.get("content-length")
    # The client's address and the route only: never the query string (OAuth codes), the
    # headers or the body. repr() keeps a hostile path from forging log lines.
    of = f" of {int(expected)}" if expected and expected.isdigit() else ""
    client = request.client.host if request.client else "an unknown client"
    path = request.scope["path"]  # not request.url, which parses the client's Host header
    return f"{client} ({request.method} {path!r}, {progress.received}{of} body bytes)"


def client_left(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`~starlette.requests.ClientDisconnect`: the connection
    closed or was reset before the app had read the whole body (uvicorn drops what it had
    buffered but not handed over). The answer goes nowhere; it exists because an exception
    handler must return one."""
    log.info(
        "a client left before its request body was read, nothing stored: %s", _describe(request)
    )
    return JSONResponse({"status": "error", "error": "the request body did not arrive"}, 400)


def too_slow(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`SlowBody`: 408, and the connection is closed after it
    (RFC 9110 §15.5.9), so the rest of the body cannot hold the connection."""
    log.warning("a client sent its request body too slowly, answered 408: %s", _describe(request))
    return JSONResponse(
        {"status": "error", "error": str(exc)}, 408, headers={"Connection": "close"}
    )
