"""The HTTP service of ``poster-pipeline serve``: one ASGI app with every route.

- ``/api/poster/webhooks``: the webhook receiver (:mod:`~poster_pipeline.http.receiver`);
- ``/api/poster/sync``: the sync API (:mod:`~poster_pipeline.http.sync_api`);
- ``/api/poster/oauth/…``: connecting an account (:mod:`~poster_pipeline.http.oauth_routes`);
- ``/dashboard``: the operators' page (:mod:`~poster_pipeline.http.dashboard`);
- ``/health/live`` and ``/health/ready``.

They share one engine and one :class:`~poster_pipeline.http.database.DatabaseGate`, so the
warehouse's connections are bounded for the whole process. Run it with ``poster-pipeline
serve``, or ``uvicorn --factory poster_pipeline.http.app:create_app`` (configured from the
environment).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from poster_pipeline.http.active_accounts import ActiveAccounts
from poster_pipeline.http.client_faults import BodyDeadline
from poster_pipeline.http.dashboard import dashboard_routes
from poster_pipeline.http.database import DatabaseGate, receiver_engine
from poster_pipeline.http.errors import exception_handlers
from poster_pipeline.http.health import Health
from poster_pipeline.http.oauth_routes import oauth_routes
from poster_pipeline.http.receiver import WebhookEndpoint, webhook_routes
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings
from poster_pipeline.http.sync_api import sync_api_routes

__all__ = ["create_app"]


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
    routes += webhook_routes(webhooks)
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
