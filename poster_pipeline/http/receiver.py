"""The webhook receiver: verify a Poster webhook, queue it durably, answer at once.

``POST /api/poster/webhooks`` answers

- 200 ``{"status":"accept"}`` once the hook is committed to ``webhook_events``: queued for a
  sync, stored as ``ignored`` with a reason (an object or account the pipeline does not sync,
  a test hook, an unknown action), or already stored (a duplicate delivery is stored once);
- 401 for a bad signature; 400/413/415/422 for a request that is not a Poster webhook;
- 408 when the body has not arrived within ``body_timeout_seconds`` (a body that stops
  arriving is never stored nor answered 2xx: see :mod:`~poster_pipeline.http.client_faults`);
- 503 ``{"status":"unavailable"}`` with ``Retry-After`` when the warehouse is down, quickly.

Poster retries an unanswered hook 15 times over two days and holds back newer hooks meanwhile
(poster-api.md §3.6), so only what is certainly not a genuine hook is refused; business
problems are recorded and answered 200 (design.md, "Webhook queue rules"). The Dagster sensor
drains the queue; nothing here calls Poster.

Run it with ``poster-pipeline serve``, or ``uvicorn --factory
poster_pipeline.http.receiver:create_app`` (configured from the environment).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from poster_pipeline.http.active_accounts import ActiveAccounts
from poster_pipeline.http.bodies import (
    JSON,
    MAX_FIELDS,
    MULTIPART,
    check_values,
    decode_json,
    decode_urlencoded,
    media_type,
    webhook_from,
)
from poster_pipeline.http.client_faults import BodyDeadline
from poster_pipeline.http.dashboard import dashboard_routes
from poster_pipeline.http.database import DatabaseGate, receiver_engine
from poster_pipeline.http.errors import RequestRejected, exception_handlers
from poster_pipeline.http.health import Health
from poster_pipeline.http.intake import classify
from poster_pipeline.http.oauth_routes import oauth_routes
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings
from poster_pipeline.http.sync_api import sync_api_routes
from poster_pipeline.poster.webhooks import WebhookEvent, WebhookSignatureError, verify
from poster_pipeline.warehouse.queue import Enqueued, store_webhook

__all__ = ["WEBHOOK_PATH", "ReceiverSettings", "WebhookEndpoint", "create_app"]

log = logging.getLogger(__name__)

#: The seed project's route; register this URL in the Poster application's settings.
WEBHOOK_PATH = "/api/poster/webhooks"
_ACCEPT = b'{"status":"accept"}'  # the official example's answer (poster-api.md §3.6)


def _loggable(value: object) -> str:
    # Field values come from the request: quoted (no forged log lines) and kept short.
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


class WebhookEndpoint:
    """``POST`` (receive a webhook) and ``GET`` (the seed's status check) of the webhook URL."""

    def __init__(self, secret: str, database: DatabaseGate, accounts: ActiveAccounts) -> None:
        self._secret = secret
        self._database = database
        self._accounts = accounts

    async def handle(self, request: Request) -> Response:
        # One route for both methods, so a 405 lists both in its Allow header.
        if request.method == "POST":
            return await self.receive(request)
        return JSONResponse({"status": "ok"})

    async def receive(self, request: Request) -> Response:
        kind = media_type(request.headers.get("content-type"))
        payload = await self._read(request, kind)
        event = webhook_from(payload)
        try:
            verify(event, self._secret)
        except WebhookSignatureError:
            log.warning(
                "refused a webhook with a bad signature from %s: account=%s object=%s "
                "object_id=%s action=%s",
                request.client.host if request.client else "an unknown client",
                _loggable(event.account),
                _loggable(event.object),
                event.object_id,
                _loggable(event.action),
            )
            raise RequestRejected(401, "the signature (verify) does not match") from None
        stored = await self._database.run(partial(self._store, event, payload))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %s:%s %s from %s",
                "duplicate" if stored.duplicate else f"stored as event {stored.id}",
                event.object,
                event.object_id,
                event.action,
                event.account,
            )
        return Response(_ACCEPT, media_type=JSON)

    async def _read(self, request: Request, kind: str) -> Any:
        if kind != MULTIPART:
            body = await request.body()
            return decode_json(body) if kind == JSON else decode_urlencoded(body)
        # Starlette answers 400 itself for a broken multipart body or any file part.
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            fields: dict[str, str] = {}
            for name, value in form.items():
                if isinstance(value, UploadFile):  # pragma: no cover - max_files=0
                    raise RequestRejected(422, f"field {name!r} must be text, not a file")
                fields[name] = value
        check_values(fields)
        return fields

    def _store(self, event: WebhookEvent, payload: Mapping[str, Any], engine: Engine) -> Enqueued:
        """Classify and insert, in a worker thread; returns once the row is committed."""
        entity, reason = classify(event, self._accounts.current(event.account))
        return store_webhook(
            engine, event, payload, entity=entity, now=datetime.now(UTC), ignore_reason=reason
        )


def create_app(settings: ReceiverSettings | None = None, engine: Engine | None = None) -> Starlette:
    """The receiver as an ASGI app; without arguments (uvicorn's ``--factory``) it reads
    :meth:`ReceiverSettings.from_env` and opens its own engine, disposed at shutdown.

    No connection is opened here: an app built while PostgreSQL is down answers 503 until it
    is back. Raises :class:`ReceiverConfigError` without an application secret, or without
    both a warehouse URL and an engine.
    """
    settings = ReceiverSettings.from_env() if settings is None else settings
    owned = engine is None
    if engine is None:
        if not settings.warehouse_url:
            raise ReceiverConfigError("the receiver needs a warehouse_url or an engine")
        engine = receiver_engine(
            settings.warehouse_url,
            pool_size=settings.database_concurrency,
            timeout=settings.database_timeout_seconds,
        )
    database = DatabaseGate(
        engine,
        timeout=settings.database_timeout_seconds,
        concurrency=settings.database_concurrency,
    )
    accounts = ActiveAccounts(engine, ttl=settings.accounts_cache_seconds)
    webhooks = WebhookEndpoint(settings.application_secret, database, accounts)
    health = Health(database)

    routes = [Route("/health/live", health.live), Route("/health/ready", health.ready)]
    # Both spellings, so a URL registered with a trailing slash is not answered with a
    # redirect, which Poster would count as a failed delivery.
    routes += [
        Route(path, webhooks.handle, methods=["GET", "POST"])
        for path in (WEBHOOK_PATH, WEBHOOK_PATH + "/")
    ]
    routes += [*sync_api_routes(settings, database), *oauth_routes(settings, database)]
    routes += dashboard_routes(settings, database)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        database.close()
        if owned:
            engine.dispose()

    return Starlette(
        routes=routes,
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
        # Counts the bytes actually received (a Content-Length may lie) and answers 413.
        max_body_size=settings.max_body_bytes,
        # Inside the size limit, so that its 408 goes through the exception handlers.
        middleware=[Middleware(BodyDeadline, seconds=settings.body_timeout_seconds)],
    )
