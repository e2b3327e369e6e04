"""OAuth connect: a restaurant approves the Poster application and its account is connected.

1. ``GET /api/poster/oauth/authorize`` stores a fresh, single-use state (hashed, 10 minutes)
   and redirects to Poster's authorize page (poster-api.md §4.1).
2. Poster redirects the browser to ``POSTER_REDIRECT_URI`` = ``GET /api/poster/oauth/callback
   ?code=…&account=…&state=…``; the callback spends the state, trades the code for a token
   (§4.3), stores the token encrypted (``accounts``, ``auth_method`` ``oauth``; a connected
   account gets the new token and is reactivated) and says so on a small page.

Nothing more is needed for the data to follow: the ``account_partitions`` sensor adds the
account's partition within 15 s, and smart sync asks for a full sync of every entity of an
account that was never synced.

The state also travels in a short-lived ``HttpOnly`` cookie scoped to the OAuth paths: Poster's
documentation does not promise to send ``state`` back (the emulator does), and the cookie lets
the callback find it either way. Pages are plain HTML, escaped, never cached, and never show
the code, the token or the application secret.
"""

from __future__ import annotations

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
    OAuthError,
    OAuthToken,
    authorize_url,
    exchange_code,
    token_url_for,
)
from poster_pipeline.warehouse.accounts import AccountStore, TokenCipher, cipher_for
from poster_pipeline.warehouse.oauth_states import STATE_TTL, consume_state, issue_state

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


class _ExchangeFailed(Exception):
    """The code exchange failed: Poster refused it, or could not be reached (``unreachable``:
    no answer, or a server error)."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable


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

    async def authorize(self, request: Request) -> Response:
        """Redirect to Poster's authorize page with a new state."""
        if (refusal := self._not_configured()) is not None:
            return refusal
        assert self._app.application_id and self._app.redirect_uri
        try:
            state = await self._database.run(partial(issue_state, now=self._clock()))
        except DatabaseUnavailable:
            return _unavailable()
        url = authorize_url(
            application_id=self._app.application_id,
            redirect_uri=self._app.redirect_uri,
            state=state,
            base_url=self._app.api_url,
        )
        response = RedirectResponse(url, 302, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=int(STATE_TTL.total_seconds()),
            path=_COOKIE_PATH,
            secure=self._app.redirect_uri.startswith("https://"),
            httponly=True,
            samesite="lax",  # sent on Poster's top-level redirect back to the callback
        )
        return response

    async def callback(self, request: Request) -> Response:
        """Check the state, exchange the code, store the token, and say what follows."""
        if (refusal := self._not_configured()) is not None:
            return refusal
        response = await self._connect(request.query_params, request.cookies)
        response.delete_cookie(STATE_COOKIE, path=_COOKIE_PATH)
        return response

    async def _connect(self, query: Mapping[str, str], cookies: Mapping[str, str]) -> Response:
        code = query.get("code", "")
        account = query.get("account", "")
        missing = [name for name, value in (("code", code), ("account", account)) if not value]
        if missing:
            return _page(
                400,
                "Not a Poster authorization",
                f"The link lacks {' and '.join(missing)}. Open it from Poster, or start again.",
                link=_START_AGAIN,
            )
        try:
            check_account_login(account)
        except ValueError:
            return _page(400, "Not a Poster account", "The link names no valid Poster account.")
        state = query.get("state") or cookies.get(STATE_COOKIE)
        if not state:
            return _page(
                400,
                "Authorization not recognised",
                "The link carries no state: start the connection from this server, in this "
                "browser.",
                link=_START_AGAIN,
            )
        try:
            spent = await self._database.run(partial(consume_state, state=state, now=self._clock()))
            if not spent:
                log.warning(
                    "OAuth: refused a callback for account %s: unknown, expired or used state",
                    account,
                )
                return _page(
                    400,
                    "Link expired",
                    "This link was already used or has expired; start again.",
                    link=_START_AGAIN,
                )
            try:
                token = await run_in_threadpool(self._exchange, code, account)
            except _ExchangeFailed as exc:
                if exc.unreachable:
                    log.error("OAuth: Poster's token endpoint failed (%s): %s", account, exc)
                    return _page(
                        502,
                        "Poster is unreachable",
                        f"Poster did not complete the authorization ({exc.message}). Try "
                        "again in a few minutes.",
                        link=_START_AGAIN,
                    )
                log.warning("OAuth: Poster refused the code of account %s: %s", account, exc)
                return _page(
                    400,
                    "Poster refused the authorization",
                    exc.message,
                    link=_START_AGAIN,
                )
            await self._database.run(partial(self._store, account, token, self._clock()))
        except DatabaseUnavailable:
            return _unavailable()
        except ValueError as exc:  # the token is another restaurant's than this login's
            log.warning("OAuth: refused to store the token of account %s: %s", account, exc)
            return _page(
                400, "This authorization is for another restaurant", str(exc), link=_START_AGAIN
            )
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
                # The login was checked, so no answer at all means no connection.
                unreachable = not statuses or statuses[-1] >= 500
                message = _redact(str(exc), code, self._app.application_secret)
                raise _ExchangeFailed(message, unreachable=unreachable) from None

    def _store(self, account: str, token: OAuthToken, now: datetime, engine: Engine) -> None:
        """Create or reactivate the account with its new token (worker thread)."""
        if self._cipher is None:
            self._cipher = cipher_for(self._token_key, self._data_dir)
        AccountStore(engine, self._cipher).add(
            account,
            token.access_token,
            now=now,
            auth_method="oauth",
            account_number=token.account_number,
        )


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
    """The OAuth connect routes, for :func:`~poster_pipeline.http.receiver.create_app`."""
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
