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
(docs/poster-api.md §3.6), so only what is certainly not a genuine hook is refused; business
problems are recorded and answered 200 (docs/design.md, "Webhook queue rules"). The Dagster sensor
drains the queue; nothing here calls Poster.

The app that serves it with the other routes is assembled in :mod:`~poster_pipeline.http.app`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from poster_pipeline.http.active_accounts import ActiveAccounts
from poster_pipeline.http.bodies import JSON, read_payload, webhook_from
from poster_pipeline.http.database import DatabaseGate
from poster_pipeline.http.errors import RequestRejected
from poster_pipeline.http.intake import classify
from poster_pipeline.poster.webhooks import WebhookEvent, WebhookSignatureError, verify
from poster_pipeline.warehouse.queue import Enqueued, store_webhook

__all__ = ["WEBHOOK_PATH", "WebhookEndpoint", "webhook_routes"]

log = logging.getLogger(__name__)

#: The seed project's route; register this URL in the Poster application's settings.
WEBHOOK_PATH = "/api/poster/webhooks"
_ACCEPT = b'{"status":"accept"}'  # the official example's answer (docs/poster-api.md §3.6)


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
        payload = await read_payload(request)
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

    def _store(self, event: WebhookEvent, payload: Mapping[str, Any], engine: Engine) -> Enqueued:
        """Classify and insert, in a worker thread; returns once the row is committed."""
        entity, reason = classify(event, self._accounts.current(event.account))
        return store_webhook(
            engine, event, payload, entity=entity, now=datetime.now(UTC), ignore_reason=reason
        )


def webhook_routes(endpoint: WebhookEndpoint) -> list[Route]:
    """The webhook URL in both spellings, so a URL registered with a trailing slash is not
    answered with a redirect, which Poster would count as a failed delivery."""
    return [
        Route(path, endpoint.handle, methods=["GET", "POST"])
        for path in (WEBHOOK_PATH, WEBHOOK_PATH + "/")
    ]
