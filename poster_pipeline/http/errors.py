"""The receiver's error answers: small JSON bodies, never a traceback or a stored value.

Endpoints raise; the handlers here turn each error type into its status code, so an endpoint
reads as the happy path and every failure has exactly one rendering. What the client did (left
mid-body, sent too slowly) is handled in :mod:`~poster_pipeline.http.client_faults`: one log
line, no traceback. Only our own faults reach :func:`_internal` and the server's traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from poster_pipeline.http.client_faults import SlowBody, client_left, too_slow
from poster_pipeline.http.database import DatabaseUnavailable

__all__ = ["RETRY_AFTER_SECONDS", "RequestRejected", "exception_handlers"]

log = logging.getLogger(__name__)

#: Told to the sender with a 503; the receiver recovers on its own once PostgreSQL answers.
RETRY_AFTER_SECONDS = 5
_MAX_MESSAGE = 300


class RequestRejected(Exception):
    """The request is refused with ``status`` (a 4xx, or 503 for a feature that is turned
    off); ``message`` says what to fix; ``headers`` go with the answer (``WWW-Authenticate``,
    ``Retry-After``)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "…"
        self.headers = dict(headers or {})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"status": "error", "error": message}, status, headers=headers)


def _rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestRejected)
    return _error(exc.status, exc.message, exc.headers)


def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405/413 and multipart errors, rendered like ours.
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, dict(exc.headers or {}))


def _unavailable(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"status": "unavailable"}, 503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def _internal(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after answering, so the server logs the traceback; the client
    # learns nothing of the internals.
    return _error(500, "internal error")


def exception_handlers() -> dict[type[Exception], ExceptionHandler]:
    """The handlers to give ``Starlette(exception_handlers=...)``."""
    return {
        RequestRejected: _rejected,
        HTTPException: _http_error,
        DatabaseUnavailable: _unavailable,
        ClientDisconnect: client_left,
        SlowBody: too_slow,
        Exception: _internal,
    }
