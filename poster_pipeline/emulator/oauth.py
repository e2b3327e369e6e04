"""Poster's OAuth for applications (docs/poster-api.md §4): authorize redirect and code exchange.

There is no login page: ``GET /api/auth`` approves at once, for the account named by the
emulator-only ``account`` parameter (default: the first account), and redirects to
``redirect_uri?code=…&account=…[&state=…]`` (§4.2). ``POST /api/v2/auth/access_token
?account=NAME`` trades the code for a new token of that account, answered in §4.3's shape (no
``response`` wrapper). Codes are single-use and live ten minutes. Error bodies follow the two
forms Poster documents: the flat ``{"error": 143, "message", "field"}`` for the application's
credentials and missing fields, ``{"code", "error_type", "error_message"}`` for the grant.

Poster's token endpoint is the account's own host, ``{account}.joinposter.com`` (§4.3); the
emulator serves every account on one host, so the ``account`` query parameter stands in for
the host. A code is bound to the account that approved it, as on Poster: redeemed at another
account's endpoint it "doesn't exist" (``invalid_grant``). That binding is what lets the
pipeline trust the account it stores a token under, so the emulator must not be laxer.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from poster_pipeline.emulator.config import EmulatorConfig
from poster_pipeline.emulator.state import EmulatorState

__all__ = ["CODE_TTL_SECONDS", "OAuthService"]

CODE_TTL_SECONDS = 600.0


@dataclass
class _Grant:
    account: str
    application_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


def _flat_error(code: int, message: str, field: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "field": field}, status_code=400)


def _grant_error(error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": 400, "error_type": error_type, "error_message": message}, status_code=400
    )


def _refusal_page(message: str) -> HTMLResponse:
    text = html.escape(message)
    return HTMLResponse(
        f"<!doctype html><title>Poster: authorization refused</title><h1>{text}</h1>",
        status_code=400,
    )


class OAuthService:
    """Authorization codes of the emulated application and the two endpoints using them."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._grants: dict[str, _Grant] = {}

    async def authorize(self, request: Request) -> Response:
        """Approve at once and redirect with a code (§4.1–4.2)."""
        query = request.query_params
        # The en docs and the PHP SDK say client_id, the ru docs application_id (§4.1).
        application_id = query.get("application_id") or query.get("client_id")
        redirect_uri = query.get("redirect_uri")
        if application_id != self._config.application_id:
            return _refusal_page(f"Unknown application {application_id!r}")
        if not redirect_uri:
            return _refusal_page("redirect_uri is required")
        if query.get("response_type") != "code":
            return _refusal_page("response_type must be code")
        account = query.get("account") or self._config.accounts[0].name
        if account not in self._state.accounts:
            return _refusal_page(f"Unknown account {account!r}")
        code = secrets.token_hex(16)
        self._grants[code] = _Grant(
            account, application_id, redirect_uri, self._clock() + CODE_TTL_SECONDS
        )
        params = {"code": code, "account": account}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    async def access_token(self, request: Request) -> Response:
        """Exchange a code for a token (§4.3); the body is form data (urlencoded or multipart),
        the ``account`` query parameter names whose endpoint this is."""
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return self.exchange(fields, endpoint_account=request.query_params.get("account", ""))

    def exchange(self, form: Mapping[str, str], *, endpoint_account: str) -> Response:
        """The token endpoint of ``endpoint_account`` (Poster's ``{account}.joinposter.com``)."""
        if not endpoint_account:
            return _flat_error(
                34,
                "account is required: it stands for the host {account}.joinposter.com",
                "account",
            )
        # The legacy endpoint's client_id/client_secret names are accepted too (§4.4).
        application_id = form.get("application_id") or form.get("client_id")
        secret = form.get("application_secret") or form.get("client_secret")
        required = {
            "application_id": application_id,
            "application_secret": secret,
            "grant_type": form.get("grant_type"),
            "redirect_uri": form.get("redirect_uri"),
            "code": form.get("code"),
        }
        for name, value in required.items():
            if not value:
                return _flat_error(34, f"{name} is required", name)
        assert application_id is not None and secret is not None
        if application_id != self._config.application_id or not hmac.compare_digest(
            secret.encode(), self._config.application_secret.encode()
        ):
            return _flat_error(143, "Requested code's application doesn't exist", "application_id")
        if form["grant_type"] != "authorization_code":
            return _grant_error("unsupported_grant_type", "grant_type must be authorization_code")
        grant = self._grants.get(form["code"])
        # Another account's endpoint does not know the code: the same answer as an unknown one.
        if (
            grant is None
            or grant.application_id != application_id
            or grant.account != endpoint_account
        ):
            return _grant_error("invalid_grant", "Authorization code doesn't exist")
        if grant.used:
            return _grant_error("invalid_grant", "Authorization code has already been used")
        if self._clock() > grant.expires_at:
            return _grant_error("invalid_grant", "Authorization code has expired")
        if form["redirect_uri"] != grant.redirect_uri:
            return _grant_error("invalid_grant", "redirect_uri does not match the authorization")
        grant.used = True
        return JSONResponse(self._token_body(grant.account))

    def _token_body(self, account_name: str) -> dict[str, Any]:
        account = self._state.account(account_name)
        owner_email = f"owner@{account.name}.example"
        return {
            "access_token": self._state.issue_token(account),
            "account_number": str(account.number),
            "user": {"id": 1, "name": "Владелец", "email": owner_email, "role_id": 3},
            "ownerInfo": {
                "email": owner_email,
                "phone": "+380 44 000 00 00",
                "city": "Киев",
                "country": "UA",
                "name": "Владелец",
                "company_name": account.name,
            },
        }
