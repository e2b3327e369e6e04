"""The operators' page, ``GET /dashboard``: every restaurant's syncs and the webhook queue.

Server-rendered HTML (Jinja2, autoescaped: restaurant names and error texts come from
outside), no JavaScript. A grid of restaurant × entity shows each pair's last full and partial
sync, the age of the full one, whether smart sync considers it due, the standing errors, the
active rows, its queued and dead events, and a link to the asset partition in the Dagster UI
(``POSTER_DAGSTER_URL``). Above it: the queue by status with the age of the oldest pending
event, and the most recent dead events. Restaurants are filtered (name, failing, stale) and
paginated in SQL (:mod:`poster_pipeline.warehouse.dashboard`). See ``docs/dashboard.md``.

Access needs ``POSTER_API_KEY`` (:mod:`~poster_pipeline.http.dashboard_auth`): as a bearer
header, or through ``/dashboard/login``, which sets a session cookie; without either the
page redirects to the login form and shows no data. Without a configured key every route
answers 503 saying how to turn the page on.
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlencode

import jinja2
from sqlalchemy.engine import Engine
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.http.dashboard_auth import (
    LOGIN_TOKEN_MAX_AGE,
    SESSION_MAX_AGE,
    DashboardKeys,
    LoginThrottle,
    Session,
    same_origin,
)
from poster_pipeline.http.dashboard_view import Row, build_rows, span
from poster_pipeline.http.database import DatabaseGate, DatabaseUnavailable
from poster_pipeline.http.errors import RETRY_AFTER_SECONDS, RequestRejected
from poster_pipeline.http.settings import ReceiverSettings
from poster_pipeline.http.sync_plan import SyncPolicy
from poster_pipeline.warehouse.dashboard import (
    STATE_FILTERS,
    AccountPage,
    QueueOverview,
    StateFilter,
    account_page,
    queue_overview,
)
from poster_pipeline.warehouse.status import SyncState, read_states

__all__ = [
    "DASHBOARD_PATH",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "PAGE_SIZE",
    "SESSION_COOKIE",
    "Dashboard",
    "dashboard_routes",
]

log = logging.getLogger(__name__)

DASHBOARD_PATH = "/dashboard"
LOGIN_PATH = "/dashboard/login"
LOGOUT_PATH = "/dashboard/logout"
SESSION_COOKIE = "poster_dashboard"
LOGIN_COOKIE = "poster_dashboard_login"
#: Restaurants per page.
PAGE_SIZE = 50
#: Dead events listed (the queue's count says how many there are in all).
DEAD_SHOWN = 20
MAX_FILTER_CHARS = 100
#: The catalogue's entities: the grid's columns, in the catalogue's order.
ENTITY_NAMES = tuple(spec.name for spec in ENTITIES)

_HEADERS = {
    # Account names and errors: not for a shared cache, nor for the back button after logout.
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form
    # posts, which the login and logout checks must refuse.
    "Referrer-Policy": "same-origin",
}

_templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.PackageLoader("poster_pipeline.http", "templates"),
        autoescape=True,  # every value, whatever the template's name
        undefined=jinja2.StrictUndefined,
    )
)


@dataclass(frozen=True)
class PageQuery:
    """What the page is asked to show: the name filter, the state filter, the page (1-based)."""

    name: str = ""
    state: StateFilter = "all"
    page: int = 1

    @classmethod
    def parse(cls, request: Request) -> PageQuery:
        params = request.query_params
        name = params.get("q", "").strip()
        if len(name) > MAX_FILTER_CHARS:
            raise RequestRejected(
                400, f"the name filter is longer than {MAX_FILTER_CHARS} characters"
            )
        state = params.get("state") or "all"
        if state not in STATE_FILTERS:
            raise RequestRejected(400, f"state must be one of {', '.join(STATE_FILTERS)}")
        raw_page = params.get("page") or "1"
        digits = raw_page.isascii() and raw_page.isdigit()  # "²" is a digit to isdigit()
        if not digits or len(raw_page) > 6 or int(raw_page) < 1:
            raise RequestRejected(400, "page must be a whole number from 1")
        return cls(name=name, state=state, page=int(raw_page))

    def url(self, **changes: Any) -> str:
        """This page's URL with ``changes`` (default values left out of the query)."""
        values = {"q": self.name, "state": self.state, "page": self.page, **changes}
        defaults = {"q": "", "state": "all", "page": 1}
        query = {k: v for k, v in values.items() if v != defaults[k]}
        return DASHBOARD_PATH + (f"?{urlencode(query)}" if query else "")


@dataclass(frozen=True)
class _PageData:
    page: AccountPage
    states: dict[tuple[str, str], SyncState]
    queue: QueueOverview
    now: datetime


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class Dashboard:
    """The page and its login, bound to a warehouse; ``api_key`` None disables them (503)."""

    def __init__(
        self,
        *,
        api_key: str | None,
        database: DatabaseGate,
        policy: SyncPolicy,
        dagster_url: str | None = None,
        entities: Sequence[str] = ENTITY_NAMES,
        throttle: LoginThrottle | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        api_key = (api_key or "").strip()
        self._keys = DashboardKeys(api_key) if api_key else None
        self._database = database
        self._policy = policy
        self._dagster_url = dagster_url
        self._entities = tuple(entities)
        self._throttle = throttle or LoginThrottle()
        self._clock = clock or (lambda: datetime.now(UTC))

    def routes(self) -> list[Route]:
        return [
            Route(DASHBOARD_PATH, self.page, methods=["GET"]),
            Route(LOGIN_PATH, self.login, methods=["GET", "POST"]),
            Route(LOGOUT_PATH, self.logout, methods=["POST"]),
        ]

    # --- rendering ----------------------------------------------------------------------

    def _render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        return _templates.TemplateResponse(
            request, template, context, status_code=status, headers={**_HEADERS, **(headers or {})}
        )

    def _message(
        self, request: Request, status: int, title: str, message: str, **kw: Any
    ) -> Response:
        return self._render(
            request, "dashboard/message.html", status, title=title, message=message, **kw
        )

    def _disabled(self, request: Request) -> Response:
        return self._message(
            request,
            503,
            "Dashboard disabled",
            "The dashboard is disabled: set POSTER_API_KEY (the sync API's bearer key) and "
            "restart poster-pipeline serve; you then log in with that key.",
        )

    def _redirect(self, url: str) -> Response:
        return RedirectResponse(url, 303, headers=_HEADERS)

    def _set_cookie(
        self, response: Response, request: Request, name: str, value: str, max_age: timedelta
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(max_age.total_seconds()),
            path=DASHBOARD_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def _delete_cookie(self, response: Response, request: Request, name: str) -> None:
        response.delete_cookie(
            name,
            path=DASHBOARD_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def _too_many(self, request: Request, wait: int) -> Response:
        return self._message(
            request,
            429,
            "Too many attempts",
            f"Too many failed attempts from this address; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )

    # --- GET /dashboard -----------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        if self._keys is None:
            return self._disabled(request)
        session = self._keys.session(request.cookies.get(SESSION_COOKIE))
        if session is None:
            refused = self._bearer(request, self._keys)
            if refused is not None:
                return refused
        try:
            query = PageQuery.parse(request)
        except RequestRejected as exc:
            return self._message(
                request, exc.status, "Bad filter", exc.message, back=DASHBOARD_PATH
            )
        try:
            data = await self._database.run(partial(self._read, query))
        except DatabaseUnavailable:
            return self._message(
                request,
                503,
                "Warehouse unavailable",
                "The warehouse does not answer; reload shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        rows = build_rows(
            data.page.names,
            data.states,
            data.queue.cells,
            entities=self._entities,
            now=data.now,
            policy=self._policy,
            dagster_url=self._dagster_url,
        )
        return self._render(
            request, "dashboard/page.html", **self._context(query, data, rows, session)
        )

    def _bearer(self, request: Request, keys: DashboardKeys) -> Response | None:
        """None when the request carries the right bearer key; else the answer: the login
        form for a browser without credentials, 401 for a wrong key, 429 when throttled."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return self._redirect(LOGIN_PATH)
        client = _client(request)
        if (wait := self._throttle.retry_after(client)) is not None:
            return self._too_many(request, wait)
        if keys.matches(credentials.strip()):
            return None
        self._throttle.failed(client)
        log.warning("dashboard: refused a wrong API key from %s", client)
        return self._message(
            request,
            401,
            "Wrong key",
            "The API key is wrong.",
            headers={"WWW-Authenticate": 'Bearer realm="poster-pipeline", error="invalid_token"'},
        )

    def _read(self, query: PageQuery, engine: Engine) -> _PageData:
        """The page's rows, in a worker thread: a bounded number of queries whatever the
        number of restaurants."""
        now = self._clock()
        with engine.connect() as conn:
            page = account_page(
                conn,
                entities=self._entities,
                name_contains=query.name,
                state=query.state,
                stale_before=now - self._policy.window,
                offset=(query.page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
            states = read_states(conn, page.names, self._entities)
        queue = queue_overview(engine, page.names, dead_limit=DEAD_SHOWN)
        return _PageData(page, states, queue, now)

    def _context(
        self, query: PageQuery, data: _PageData, rows: list[Row], session: Session | None
    ) -> dict[str, Any]:
        pages = max(1, math.ceil(data.page.total / PAGE_SIZE))
        oldest = data.queue.oldest_pending_at
        first = (query.page - 1) * PAGE_SIZE + 1
        return {
            "query": query,
            "states": STATE_FILTERS,
            "entities": self._entities,
            "rows": rows,
            "total": data.page.total,
            "first": first,
            "last": first + len(rows) - 1,
            "pages": pages,
            "previous_url": query.url(page=query.page - 1) if query.page > 1 else None,
            "next_url": query.url(page=query.page + 1) if query.page < pages else None,
            "queue": data.queue.counts,
            "oldest_pending": None if oldest is None else span(data.now - oldest),
            "dead": data.queue.dead,
            "now": data.now,
            "window": span(self._policy.window),
            "dagster_url": self._dagster_url,
            # A bearer request has no session, hence no logout form.
            "csrf": session.csrf if session else None,
            "logout_path": LOGOUT_PATH,
        }

    # --- login and logout ---------------------------------------------------------------

    def _login_form(
        self, request: Request, keys: DashboardKeys, status: int, error: str | None
    ) -> Response:
        token = keys.new_login_token()
        response = self._render(
            request, "dashboard/login.html", status, token=token, error=error, action=LOGIN_PATH
        )
        self._set_cookie(response, request, LOGIN_COOKIE, token, LOGIN_TOKEN_MAX_AGE)
        return response

    async def login(self, request: Request) -> Response:
        keys = self._keys
        if keys is None:
            return self._disabled(request)
        if request.method == "GET":
            if keys.session(request.cookies.get(SESSION_COOKIE)) is not None:
                return self._redirect(DASHBOARD_PATH)
            return self._login_form(request, keys, 200, None)
        client = _client(request)
        if (wait := self._throttle.retry_after(client)) is not None:
            return self._too_many(request, wait)
        fields = await self._form(request)
        if not same_origin(request.headers.get("origin"), request.headers.get("host")) or (
            not keys.login_token_valid(request.cookies.get(LOGIN_COOKIE), fields.get("token"))
        ):
            return self._login_form(request, keys, 403, "The form expired; please try again.")
        if not keys.matches(fields.get("key", "")):
            self._throttle.failed(client)
            log.warning("dashboard: a failed login from %s", client)
            return self._login_form(request, keys, 401, "That is not the key.")
        cookie, _ = keys.new_session()
        response = self._redirect(DASHBOARD_PATH)
        self._set_cookie(response, request, SESSION_COOKIE, cookie, SESSION_MAX_AGE)
        self._delete_cookie(response, request, LOGIN_COOKIE)
        log.info("dashboard: a login from %s", client)
        return response

    async def logout(self, request: Request) -> Response:
        keys = self._keys
        if keys is None:
            return self._disabled(request)
        session = keys.session(request.cookies.get(SESSION_COOKIE))
        fields = await self._form(request)
        # Without a session there is nothing to end; with one, only its own page may end it.
        if session is not None and not (
            same_origin(request.headers.get("origin"), request.headers.get("host"))
            and hmac.compare_digest(fields.get("token", "").encode(), session.csrf.encode())
        ):
            return self._message(
                request,
                403,
                "Not logged out",
                "The form expired; reload the page and log out again.",
                back=DASHBOARD_PATH,
            )
        response = self._redirect(LOGIN_PATH)
        self._delete_cookie(response, request, SESSION_COOKIE)
        return response

    @staticmethod
    async def _form(request: Request) -> dict[str, str]:
        """The form's text fields (a few, short); anything else is ignored."""
        try:
            async with request.form(max_files=0, max_fields=10, max_part_size=4096) as form:
                return {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        except HTTPException:  # a broken body is an empty form: the checks refuse it
            return {}


def dashboard_routes(settings: ReceiverSettings, database: DatabaseGate) -> list[Route]:
    """The dashboard's routes, for :func:`~poster_pipeline.http.app.create_app`."""
    policy = SyncPolicy(window=timedelta(hours=settings.smart_sync_window_hours))
    return Dashboard(
        api_key=settings.api_key,
        database=database,
        policy=policy,
        dagster_url=settings.dagster_url,
    ).routes()
