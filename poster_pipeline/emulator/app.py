"""The emulator's ASGI app: Poster's Web API and OAuth under ``/api``, control under ``/control``.

Every handler is ``async def`` and runs on the one event loop, so the shared state needs no
locks. Nothing answers with a traceback page: routing errors and unexpected exceptions come
back as JSON, in Poster's error envelope under ``/api``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from poster_pipeline.emulator.config import EmulatorConfig
from poster_pipeline.emulator.control import control_routes
from poster_pipeline.emulator.services import Services
from poster_pipeline.emulator.web_api import WebApi, poster_error

__all__ = ["build_app"]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return poster_error(exc.status_code, exc.detail, status=exc.status_code)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer, so the server logs the traceback once.
    message = f"emulator error: {type(exc).__name__}"
    if request.url.path.startswith("/api/"):
        return poster_error(500, message, status=500)
    return JSONResponse({"error": message}, status_code=500)


def build_app(config: EmulatorConfig) -> Starlette:
    """A Poster emulator for ``config``; its data is generated here, before serving."""
    services = Services.build(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await services.webhooks.aclose()

    routes = [
        Route("/api/auth", services.oauth.authorize, methods=["GET"]),
        Route("/api/v2/auth/access_token", services.oauth.access_token, methods=["POST"]),
        Route("/api/{method}", WebApi(services).handle, methods=["GET", "POST"]),
        *control_routes(services),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
