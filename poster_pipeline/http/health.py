"""Liveness and readiness probes, for a load balancer or an orchestrator.

Live means the process serves HTTP; ready means a webhook posted now would be stored: the
warehouse answers and has the ``webhook_events`` table.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from poster_pipeline.http.database import DatabaseGate, DatabaseUnavailable, queue_table_exists

__all__ = ["Health"]


class Health:
    """The ``/health/live`` and ``/health/ready`` endpoints."""

    def __init__(self, database: DatabaseGate) -> None:
        self._database = database

    async def live(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        try:
            ready = await self._database.run(queue_table_exists)
        except DatabaseUnavailable:
            return JSONResponse({"status": "unavailable", "reason": "the warehouse is down"}, 503)
        if not ready:
            reason = "the warehouse has no webhook_events table: run `poster-pipeline db upgrade`"
            return JSONResponse({"status": "unavailable", "reason": reason}, 503)
        return JSONResponse({"status": "ok"})
