"""The sync API: read the sync status, ask for full syncs (``docs/sync-api.md``).

``GET /api/poster/sync`` reports, per active account and entity, the last full and partial
sync, whether smart sync considers it due, and the standing error of each kind of sync.
``GET /api/poster/sync?account=NAME`` reports one account in the seed project's shape,
``{"status": {"<entity>": {"lastSyncAt": ..., "needsSync": ..., ...}}}`` (404 for an
account that is unknown or inactive).
``POST /api/poster/sync`` (``{"entities": [...], "force": bool, "accounts": [...]}``, all
optional) stores a ``sync_requests`` row per sync it accepts and answers 202 at once; the
``sync_requests`` Dagster sensor turns the rows into runs within seconds. Nothing here calls
Poster or Dagster.

The seed's per-entity routes are thin aliases of the POST with the entity fixed. Every route
needs ``Authorization: Bearer <POSTER_API_KEY>``; without a configured key the API answers
503, so an unprotected deployment never exposes it by accident. The webhook endpoint does
not use the key: Poster signs its hooks instead.

Answers are JSON: ``{"success": true, ...}``, or ``{"success": false, "error": "..."}`` with
the status code (400/415/422 for a body or query to fix, 401, 404 for an unknown account,
429 with ``Retry-After``, 503 when the API is disabled or the warehouse is down).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.http.bodies import FORM, JSON, decode_json, media_type
from poster_pipeline.http.database import DatabaseGate, DatabaseUnavailable
from poster_pipeline.http.errors import RETRY_AFTER_SECONDS, RequestRejected
from poster_pipeline.http.settings import ReceiverSettings
from poster_pipeline.http.sync_plan import (
    SelectionError,
    SyncPlan,
    SyncPolicy,
    describe_state,
    parse_selection,
    plan_sync,
)
from poster_pipeline.warehouse.accounts import active_account_names
from poster_pipeline.warehouse.status import SyncState, read_states
from poster_pipeline.warehouse.sync_requests import (
    add_requests,
    lock_decisions,
    prune_launched,
    request_history,
)

__all__ = ["ENTITY_ROUTES", "SYNC_PATH", "SyncApi", "sync_api_routes"]

log = logging.getLogger(__name__)

SYNC_PATH = "/api/poster/sync"
#: The seed project's per-entity routes and the entity each one syncs.
ENTITY_ROUTES: Mapping[str, str] = {
    "/api/poster/sync-suppliers": "suppliers",
    "/api/sync-ingredients": "ingredients",
    "/api/sync-sections": "workshops",  # Poster's "sections" are workshops (цеха)
}
#: The catalogue's entities, in the order answers list them.
ENTITY_NAMES = tuple(spec.name for spec in ENTITIES)
REQUESTED_BY = "api"
#: Launched requests are history after this; the next POST deletes them.
KEEP_LAUNCHED = timedelta(days=30)

Handler = Callable[[], Awaitable[Response]]


def _failure(
    status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"success": False, "error": message, **extra}, status, headers=headers)


def _digest(key: str) -> bytes:
    # Equal-length inputs, so the comparison's time says nothing about the key's length.
    return hashlib.sha256(key.encode()).digest()


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _account_parameter(request: Request) -> str | None:
    """The ``account`` query parameter: ``None`` when absent; one non-empty name, else 400."""
    values = request.query_params.getlist("account")
    if not values:
        return None
    if len(values) > 1:
        raise RequestRejected(400, "give one account: ?account=NAME (omit it for every account)")
    account = values[0].strip()
    if not account:
        raise RequestRejected(400, "the account parameter is empty: ?account=NAME")
    return account


def _read_payload(body: bytes, content_type: str | None) -> Any:
    """The decoded JSON body, or None for an empty one (all defaults)."""
    if not body.strip():
        return None
    kind = media_type(content_type)  # 415 for a missing or unknown type
    # `curl -d '{...}'` labels JSON as a form unless told otherwise; read it as what it is.
    if kind == JSON or (kind == FORM and body.lstrip().startswith(b"{")):
        return decode_json(body)
    raise RequestRejected(415, f"unsupported Content-Type {kind!r}; send {JSON}")


class SyncApi:
    """The endpoints, bound to a warehouse (through ``database``) and a policy.

    ``api_key`` None disables the API (503). ``clock`` is for tests.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        database: DatabaseGate,
        policy: SyncPolicy,
        entities: Sequence[str] = ENTITY_NAMES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        api_key = (api_key or "").strip()
        self._key_digest = _digest(api_key) if api_key else None
        self._database = database
        self._policy = policy
        self._entities = tuple(entities)
        self._clock = clock
        # One decision at a time per process; PostgreSQL's advisory lock extends it across
        # processes (SQLite, the demo's database, serves one process).
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        routes = [Route(SYNC_PATH, self.sync, methods=["GET", "POST"])]
        routes += [
            Route(path, partial(self.sync_entity, entity), methods=["POST"])
            for path, entity in ENTITY_ROUTES.items()
        ]
        return routes

    async def sync(self, request: Request) -> Response:
        """``GET``: the status; ``POST``: ask for syncs."""
        if request.method == "POST":
            return await self._answer(request, partial(self._submit, request, None))
        return await self._answer(request, partial(self._status, request))

    async def sync_entity(self, entity: str, request: Request) -> Response:
        """A per-entity alias: ``POST /api/poster/sync`` with ``entities`` = ``[entity]``."""
        return await self._answer(request, partial(self._submit, request, entity))

    async def _answer(self, request: Request, handler: Handler) -> Response:
        # Errors are rendered here rather than by the app's handlers, so the sync API keeps
        # its own {"success": false, "error": ...} shape.
        try:
            self._authenticate(request)
            return await handler()
        except RequestRejected as exc:
            return _failure(exc.status, exc.message, exc.headers)
        except SelectionError as exc:
            return _failure(exc.status, exc.message, **exc.details)
        except DatabaseUnavailable:
            return _failure(
                503,
                "the warehouse is unavailable; retry shortly",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

    def _authenticate(self, request: Request) -> None:
        if self._key_digest is None:
            raise RequestRejected(503, "sync API disabled: set POSTER_API_KEY")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise RequestRejected(
                401,
                "send the API key as 'Authorization: Bearer <POSTER_API_KEY>'",
                {"WWW-Authenticate": 'Bearer realm="poster-pipeline"'},
            )
        if not hmac.compare_digest(_digest(credentials), self._key_digest):
            log.warning(
                "sync API: refused a wrong API key from %s",
                request.client.host if request.client else "an unknown client",
            )
            raise RequestRejected(
                401,
                "the API key is wrong",
                {"WWW-Authenticate": 'Bearer realm="poster-pipeline", error="invalid_token"'},
            )

    # --- GET ----------------------------------------------------------------------------

    async def _status(self, request: Request) -> Response:
        account = _account_parameter(request)
        if account is not None:
            return await self._account_status(account)
        names, states, now = await self._database.run(self._read_status)
        report = {
            account: {
                entity: describe_state(states.get((account, entity)), now=now, policy=self._policy)
                for entity in self._entities
            }
            for account in names
        }
        return JSONResponse(
            {
                "success": True,
                "windowHours": _number(self._policy.window.total_seconds() / 3600),
                "accounts": report,
            }
        )

    def _read_status(
        self, engine: Engine, account: str | None = None
    ) -> tuple[list[str], dict[tuple[str, str], SyncState], datetime]:
        """The active accounts, and the sync states of all of them or of ``account`` only."""
        with engine.connect() as conn:
            names = active_account_names(conn)
            wanted = names if account is None else [a for a in names if a == account]
            return names, read_states(conn, wanted), self._clock()

    async def _account_status(self, account: str) -> Response:
        """One account in the seed's shape: ``status`` maps each entity to its report."""
        names, states, now = await self._database.run(partial(self._read_status, account=account))
        if account not in names:
            raise SelectionError(
                404,
                f"unknown or inactive account {account!r}; active accounts: "
                + (", ".join(names) or "none"),
                validAccounts=names,
            )
        report = {
            entity: describe_state(states.get((account, entity)), now=now, policy=self._policy)
            for entity in self._entities
        }
        return JSONResponse(
            {
                "success": True,
                "account": account,
                "windowHours": _number(self._policy.window.total_seconds() / 3600),
                "status": report,
            }
        )

    # --- POST ---------------------------------------------------------------------------

    async def _submit(self, request: Request, fixed_entity: str | None) -> Response:
        payload = _read_payload(await request.body(), request.headers.get("content-type"))
        plan = await self._database.run(partial(self._decide, payload, fixed_entity))
        queued = [{"account": q.account, "entity": q.entity, "force": q.force} for q in plan.queued]
        skipped = [
            {"account": s.account, "entity": s.entity, "reason": s.reason}
            | ({"retryAfter": s.retry_after} if s.retry_after is not None else {})
            for s in plan.skipped
        ]
        if plan.rate_limited:
            wait = plan.retry_after
            return _failure(
                429,
                f"rate limited: at most one forced sync per "
                f"{_number(self._policy.force_interval.total_seconds())} s for each account "
                f"and entity; retry in {wait} s",
                {"Retry-After": str(wait)},
                queued=queued,
                skipped=skipped,
            )
        return JSONResponse({"success": True, "queued": queued, "skipped": skipped}, 202)

    def _decide(self, payload: Any, fixed_entity: str | None, engine: Engine) -> SyncPlan:
        """Validate, plan and store the accepted requests in one transaction (worker thread).

        The lock makes "decide from the stored requests, then insert" atomic, so two
        concurrent forced requests cannot both pass the rate limit.
        """
        with self._lock, engine.begin() as conn:
            lock_decisions(conn)
            now = self._clock()
            selection = parse_selection(
                payload,
                accounts=active_account_names(conn),
                entities=self._entities,
                fixed_entity=fixed_entity,
            )
            plan = plan_sync(
                selection,
                read_states(conn, selection.accounts),
                request_history(conn, selection.accounts, since=now - self._policy.history_horizon),
                now=now,
                policy=self._policy,
            )
            add_requests(conn, plan.queued, now=now, requested_by=REQUESTED_BY)
            prune_launched(conn, before=now - KEEP_LAUNCHED)
        if plan.queued:
            log.info(
                "sync API: queued %d %s full syncs: %s",
                len(plan.queued),
                "forced" if selection.force else "smart",
                ", ".join(f"{q.account}/{q.entity}" for q in plan.queued[:20])
                + (" …" if len(plan.queued) > 20 else ""),
            )
        return plan


def sync_api_routes(settings: ReceiverSettings, database: DatabaseGate) -> list[Route]:
    """The sync API's routes, for :func:`~poster_pipeline.http.app.create_app`."""
    policy = SyncPolicy(
        window=timedelta(hours=settings.smart_sync_window_hours),
        force_interval=timedelta(seconds=settings.force_interval_seconds),
    )
    return SyncApi(api_key=settings.api_key, database=database, policy=policy).routes()
