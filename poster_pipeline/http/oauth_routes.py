"""OAuth connect: a restaurant approves the Poster application and its account is connected.

1. ``GET /api/poster/oauth/authorize`` stores a fresh, single-use state bound to a fresh
   browser key (both hashed, 10 minutes), puts the browser key in an ``HttpOnly``,
   ``SameSite=Lax`` cookie scoped to the OAuth paths, and redirects to Poster's authorize page
   with the state (docs/poster-api.md §4.1).
2. Poster redirects the browser to ``POSTER_REDIRECT_URI`` = ``GET /api/poster/oauth/callback
   ?code=…&account=…&state=…``; the callback spends the state, and goes on only if the
   browser's cookie holds the key the state was issued with. It trades the code for a token at
   the account's own token endpoint (§4.3), stores the token encrypted under the login that
   endpoint vouched for (:meth:`~poster_pipeline.warehouse.accounts.AccountStore.connect`),
   clears the cookie and says what happened on a small page.

Why both checks: the state proves this server started the authorization; the cookie proves
this browser did, so a callback link passed to someone else (login CSRF) connects nothing. The
``account`` of the link is only a claim; the account's endpoint redeems only codes its own
restaurant approved, and the answer's account number must match the token and the login's
stored number, so a code cannot be stored under another restaurant's login.

Poster's documentation does not promise to send ``state`` back (integrations report it does
not; the emulator does): without one, the callback spends the pending state of the browser's
cookie instead. That cannot tell Poster's redirect from a stranger's state-less link opened by
a browser in the middle of its own connection; such a link can only connect the stranger's
restaurant under its own login, and the page names it.

Nothing more is needed for the data to follow: the ``account_partitions`` sensor adds the
account's partition within 15 s, and smart sync asks for a full sync of every entity of an
account that was never synced. Pages are plain HTML, escaped, never cached, and never show
the code, the token, the cookie or the application secret; neither do the logs.
"""

from __future__ import annotations

import enum
import html
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import requests
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from poster_pipeline.http.database import DatabaseGate, DatabaseUnavailable
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings
from poster_pipeline.poster.client import DEFAULT_API_URL
from poster_pipeline.poster.login import check_account_login
from poster_pipeline.poster.oauth import (
    OAuthAnswerError,
    OAuthError,
    OAuthToken,
    authorize_url,
    exchange_code,
    token_url_for,
)
from poster_pipeline.warehouse.accounts import (
    AccountConflict,
    AccountNumberTaken,
    AccountStore,
    TokenCipher,
    cipher_for,
)
from poster_pipeline.warehouse.oauth_states import (
    STATE_TTL,
    StateCheck,
    consume_state,
    issue_state,
)

__all__ = [
    "AUTHORIZE_PATH",
    "CALLBACK_PATH",
    "STATE_COOKIE",
    "OAuthApplication",
    "OAuthConnect",
    "oauth_routes",
]

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/api/poster/oauth/authorize"
CALLBACK_PATH = "/api/poster/oauth/callback"
STATE_COOKIE = "poster_oauth_state"
_COOKIE_PATH = "/api/poster/oauth"

_PAGE_HEADERS = {
    # The callback's URL holds a one-time code: keep it out of caches and Referer headers.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_START_AGAIN = (AUTHORIZE_PATH, "Start again")


def _page(
    status: int, title: str, message: str, *, link: tuple[str, str] | None = None
) -> HTMLResponse:
    parts = [
        "<!doctype html>",
        '<html lang="en"><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(message)}</p>",
    ]
    if link is not None:
        href, text = link
        parts.append(f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>')
    return HTMLResponse("\n".join(parts) + "\n", status, headers=_PAGE_HEADERS)


def _redact(message: str, *secrets: str) -> str:
    """``message`` without any of ``secrets`` in it, should Poster ever echo one."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "…")
    return message


class _Failure(enum.Enum):
    REFUSED = "refused"  # Poster said no (a bad, used or foreign code; wrong credentials)
    UNREACHABLE = "unreachable"  # no answer, or a server error
    INCONSISTENT = "inconsistent"  # a token, but not clearly of this account


class _ExchangeFailed(Exception):
    """The code exchange failed; ``failure`` says how, ``message`` is safe to show."""

    def __init__(self, message: str, *, failure: _Failure) -> None:
        super().__init__(message)
        self.message = message
        self.failure = failure


@dataclass(frozen=True)
class OAuthApplication:
    """The Poster application's OAuth settings; None where the operator has not set them."""

    application_id: str | None
    application_secret: str | None
    redirect_uri: str | None
    api_url: str = DEFAULT_API_URL

    def missing(self) -> list[str]:
        """The variables to set before OAuth connect works."""
        values = {
            "POSTER_APPLICATION_ID": self.application_id,
            "POSTER_APPLICATION_SECRET": self.application_secret,
            "POSTER_REDIRECT_URI": self.redirect_uri,
        }
        return [name for name, value in values.items() if not value]


class OAuthConnect:
    """The two OAuth routes, bound to the application, the warehouse and the token key.

    ``token_key`` None means the demo key in ``data_dir`` (created on first use), exactly as
    Dagster's ``WarehouseResource`` reads it; an invalid key raises
    :class:`~poster_pipeline.http.settings.ReceiverConfigError` here rather than on the
    first connection.
    """

    def __init__(
        self,
        application: OAuthApplication,
        database: DatabaseGate,
        *,
        token_key: str | None,
        data_dir: Path,
        exchange_timeout: float = 20.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._app = application
        self._database = database
        self._token_key = token_key
        self._data_dir = data_dir
        self._exchange_timeout = exchange_timeout
        self._clock = clock
        self._cipher: TokenCipher | None = None
        if token_key:
            try:
                self._cipher = TokenCipher(token_key)
            except ValueError as exc:
                raise ReceiverConfigError(str(exc)) from None

    def routes(self) -> list[Route]:
        return [
            Route(AUTHORIZE_PATH, self.authorize, methods=["GET"]),
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
        ]

    def _not_configured(self) -> Response | None:
        missing = self._app.missing()
        if not missing:
            return None
        return _page(
            503,
            "OAuth connect is not configured",
            f"The operator must set {', '.join(missing)} and restart the server.",
        )

    def _secure_cookie(self, request: Request) -> bool:
        """``Secure`` when the browser talks HTTPS to us now or will on the callback (behind a
        TLS proxy the request itself may look like plain HTTP)."""
        assert self._app.redirect_uri
        return request.url.scheme == "https" or self._app.redirect_uri.startswith("https://")

    async def authorize(self, request: Request) -> Response:
        """Redirect to Poster's authorize page with a new state, bound to this browser by a
        new key in its cookie (a browser that starts again gets a new key: the last start
        wins)."""
        if (refusal := self._not_configured()) is not None:
            return refusal
        assert self._app.application_id and self._app.redirect_uri
        try:
            issued = await self._database.run(partial(issue_state, now=self._clock()))
        except DatabaseUnavailable:
            return _unavailable()
        url = authorize_url(
            application_id=self._app.application_id,
            redirect_uri=self._app.redirect_uri,
            state=issued.state,
            base_url=self._app.api_url,
        )
        response = RedirectResponse(url, 302, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            STATE_COOKIE,
            issued.browser_key,
            max_age=int(STATE_TTL.total_seconds()),
            path=_COOKIE_PATH,
            secure=self._secure_cookie(request),
            httponly=True,
            samesite="lax",  # sent on Poster's top-level redirect back to the callback
        )
        return response

    async def callback(self, request: Request) -> Response:
        """Check the state and the browser, exchange the code, store the token, and say what
        follows.

        The cookie is cleared once its own authorization is over (spent by this callback,
        whatever the outcome of the exchange, or found dead). It is kept when the link was
        another browser's or carried an unknown state: this browser may still have a
        connection of its own in progress, which such a link must not break.
        """
        if (refusal := self._not_configured()) is not None:
            return refusal
        response, spent = await self._connect(request.query_params, request.cookies)
        if spent:
            response.delete_cookie(
                STATE_COOKIE,
                path=_COOKIE_PATH,
                secure=self._secure_cookie(request),
                httponly=True,
                samesite="lax",
            )
        return response

    async def _connect(
        self, query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> tuple[Response, bool]:
        """The page, and whether this browser's authorization is over (clear its cookie)."""
        code = query.get("code", "")
        account = query.get("account", "")
        missing = [name for name, value in (("code", code), ("account", account)) if not value]
        if missing:
            page = _page(
                400,
                "Not a Poster authorization",
                f"The link lacks {' and '.join(missing)}. Open it from Poster, or start again.",
                link=_START_AGAIN,
            )
            return page, False
        try:
            check_account_login(account)
        except ValueError:
            page = _page(400, "Not a Poster account", "The link names no valid Poster account.")
            return page, False
        state = query.get("state") or None
        browser_key = cookies.get(STATE_COOKIE) or None
        if state is None and browser_key is None:
            page = _page(
                400,
                "Authorization not recognised",
                "The link carries no state and this browser has no connection in progress: "
                "start the connection from this server, in this browser.",
                link=_START_AGAIN,
            )
            return page, False
        try:
            check = await self._database.run(
                partial(consume_state, state=state, browser_key=browser_key, now=self._clock())
            )
        except DatabaseUnavailable:
            return _unavailable(), False
        if check is StateCheck.UNKNOWN:
            log.warning(
                "OAuth: refused a callback for account %s: unknown, expired or used state",
                account,
            )
            page = _page(
                400,
                "Link expired",
                "This link was already used or has expired; start again.",
                link=_START_AGAIN,
            )
            return page, state is None  # without a state, it is the cookie that led nowhere
        if check is StateCheck.OTHER_BROWSER:
            log.warning(
                "OAuth: refused a callback for account %s: its state was issued to another "
                "browser (%s); the state is spent",
                account,
                "no cookie" if browser_key is None else "another browser's cookie",
            )
            page = _page(
                400,
                "Started in another browser",
                "This connection was started in another browser, or this browser started "
                "another one since, or did not keep its cookie. This link cannot be used "
                "again: start the connection again in this browser.",
                link=_START_AGAIN,
            )
            return page, False
        return await self._complete(code, account), True

    async def _complete(self, code: str, account: str) -> Response:
        """Exchange the code of an accepted callback and store the token; the page says how
        it went."""
        try:
            token = await run_in_threadpool(self._exchange, code, account)
        except _ExchangeFailed as exc:
            return _exchange_failed(exc, account)
        try:
            await self._database.run(partial(self._store, account, token, self._clock()))
        except DatabaseUnavailable:
            return _unavailable()
        except AccountConflict as exc:  # the login or the number is another restaurant's
            log.warning("OAuth: refused to store the token of account %s: %s", account, exc)
            title = (
                "This restaurant is already connected"
                if isinstance(exc, AccountNumberTaken)
                else "This authorization is for another restaurant"
            )
            return _page(409, title, f"{exc} Nothing was stored.", link=_START_AGAIN)
        except ValueError as exc:  # the store's own check of the token against the number
            failed = _ExchangeFailed(str(exc), failure=_Failure.INCONSISTENT)
            return _exchange_failed(failed, account)
        log.info(
            "OAuth: connected account %s (Poster account number %s)",
            account,
            token.account_number,
        )
        return _page(
            200,
            f"Connected {account}",
            f"Connected {account}: the first full sync starts within a minute. Its data will "
            "then stay fresh on its own (webhooks, smart sync, the nightly sync).",
        )

    def _exchange(self, code: str, account: str) -> OAuthToken:
        """Trade the code for a token (worker thread); raises :class:`_ExchangeFailed`."""
        assert self._app.application_id and self._app.application_secret
        assert self._app.redirect_uri
        statuses: list[int] = []
        with requests.Session() as session:
            session.hooks["response"].append(
                lambda answer, *_, **__: statuses.append(answer.status_code)
            )
            try:
                return exchange_code(
                    code=code,
                    account=account,
                    application_id=self._app.application_id,
                    application_secret=self._app.application_secret,
                    redirect_uri=self._app.redirect_uri,
                    token_url=token_url_for(self._app.api_url),
                    timeout=self._exchange_timeout,
                    session=session,
                )
            except OAuthError as exc:
                message = _redact(str(exc), code, self._app.application_secret)
                if isinstance(exc, OAuthAnswerError):
                    failure = _Failure.INCONSISTENT
                # The login was checked, so no answer at all means no connection.
                elif not statuses or statuses[-1] >= 500:
                    failure = _Failure.UNREACHABLE
                else:
                    failure = _Failure.REFUSED
                raise _ExchangeFailed(message, failure=failure) from None

    def _store(self, account: str, token: OAuthToken, now: datetime, engine: Engine) -> None:
        """Connect the account Poster vouched for with its new token (worker thread)."""
        if self._cipher is None:
            self._cipher = cipher_for(self._token_key, self._data_dir)
        AccountStore(engine, self._cipher).connect(
            account, token.access_token, account_number=token.account_number, now=now
        )


def _exchange_failed(exc: _ExchangeFailed, account: str) -> Response:
    """The page, and the log line, of a failed code exchange."""
    if exc.failure is _Failure.UNREACHABLE:
        log.error("OAuth: Poster's token endpoint failed (%s): %s", account, exc)
        return _page(
            502,
            "Poster is unreachable",
            f"Poster did not complete the authorization ({exc.message}). Try again in a few "
            "minutes.",
            link=_START_AGAIN,
        )
    if exc.failure is _Failure.INCONSISTENT:
        log.error("OAuth: refused Poster's token answer for account %s: %s", account, exc)
        return _page(
            502,
            "Poster's answer did not add up",
            f"{exc.message}. Nothing was stored. Start again; if it happens again, tell the "
            "operator.",
            link=_START_AGAIN,
        )
    log.warning("OAuth: Poster refused the code of account %s: %s", account, exc)
    return _page(400, "Poster refused the authorization", exc.message, link=_START_AGAIN)


def _unavailable() -> Response:
    page = _page(
        503,
        "Temporarily unavailable",
        "The server cannot reach its database. Try again in a minute.",
        link=_START_AGAIN,
    )
    page.headers["Retry-After"] = "30"
    return page


def oauth_routes(settings: ReceiverSettings, database: DatabaseGate) -> list[Route]:
    """The OAuth connect routes, for :func:`~poster_pipeline.http.app.create_app`."""
    application = OAuthApplication(
        application_id=settings.application_id,
        application_secret=settings.application_secret,
        redirect_uri=settings.redirect_uri,
        api_url=settings.api_url,
    )
    connect = OAuthConnect(
        application, database, token_key=settings.token_key, data_dir=settings.data_dir
    )
    return connect.routes()
