"""Poster OAuth for applications (poster-api.md §4).

1. Send the user to :func:`authorize_url`; Poster asks them to approve the application.
2. Poster redirects to ``redirect_uri?code=...&account=...`` (the ``state`` you passed comes
   back too on the emulator; check it before step 3).
3. :func:`exchange_code` posts the code as form data to
   ``https://{account}.joinposter.com/api/v2/auth/access_token`` and returns the token, valid
   for two years, with no refresh token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from poster_pipeline.poster.client import DEFAULT_API_URL
from poster_pipeline.poster.login import check_account_login

__all__ = [
    "DEFAULT_TOKEN_URL",
    "OAuthError",
    "OAuthToken",
    "authorize_url",
    "exchange_code",
    "parse_token_response",
]

DEFAULT_TOKEN_URL = "https://{account}.joinposter.com/api/v2/auth/access_token"


class OAuthError(Exception):
    """Poster refused the authorization or the code exchange; the message says why.

    ``field`` names the offending request field when Poster says which (its flat error form,
    e.g. ``{"error": 143, "message": "...", "field": "application_id"}``).
    """

    def __init__(self, message: str, *, code: int | str | None = None, field: str | None = None):
        self.code = code
        self.field = field
        where = f" (field {field})" if field else ""
        what = f" [Poster error {code}]" if code is not None else ""
        super().__init__(f"Poster OAuth: {message}{where}{what}")


@dataclass(frozen=True)
class OAuthToken:
    """A Poster access token and who it belongs to. ``repr`` never shows the token."""

    access_token: str = field(repr=False)
    account_number: str
    account: str | None = None
    user: Mapping[str, Any] = field(default_factory=dict)
    owner_info: Mapping[str, Any] = field(default_factory=dict)
    tariff: Mapping[str, Any] | None = None


def authorize_url(
    *, application_id: str, redirect_uri: str, state: str, base_url: str = DEFAULT_API_URL
) -> str:
    """Where to send the user to approve the application.

    ``state`` is the caller's anti-forgery value (single-use, checked on the callback).
    """
    if not state:
        raise ValueError("an OAuth state is required")
    query = urlencode(
        {
            "application_id": application_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
        }
    )
    return f"{base_url.rstrip('/')}/auth?{query}"


def parse_token_response(status: int, body: Any) -> OAuthToken:
    """Type Poster's access-token answer, or raise :class:`OAuthError` for any error form."""
    if not isinstance(body, Mapping):
        raise OAuthError(f"HTTP {status} with a body that is not a JSON object")
    if "error" in body and body["error"] not in (None, 0, ""):
        error = body["error"]
        if isinstance(error, Mapping):  # the Web API's nested form
            raise OAuthError(str(error.get("message") or "refused"), code=error.get("code"))
        message = body.get("message") or (error if isinstance(error, str) else "refused")
        raise OAuthError(
            str(message), code=error if isinstance(error, int) else None, field=body.get("field")
        )
    if "error_type" in body or "error_message" in body:  # the access-token endpoint's form
        message = body.get("error_message") or body.get("error_type") or "refused"
        raise OAuthError(str(message), code=body.get("code") or body.get("error_type"))
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthError(f"HTTP {status} without an access_token")
    if status >= 400:
        raise OAuthError(f"HTTP {status}")
    number = body.get("account_number") or token.split(":", 1)[0]
    return OAuthToken(
        access_token=token,
        account_number=str(number),
        account=body.get("account") if isinstance(body.get("account"), str) else None,
        user=body.get("user") or {},
        owner_info=body.get("ownerInfo") or {},
        tariff=body.get("tariff"),
    )


def exchange_code(
    *,
    code: str,
    account: str,
    application_id: str,
    application_secret: str,
    redirect_uri: str,
    token_url: str = DEFAULT_TOKEN_URL,
    timeout: float = 20.0,
    session: requests.Session | None = None,
) -> OAuthToken:
    """Trade the callback's ``code`` for an access token.

    ``token_url`` may contain ``{account}`` (the real host is the account's subdomain); the
    emulator's is ``http://127.0.0.1:PORT/api/v2/auth/access_token``. The body is sent as
    multipart form data, as Poster's docs ask ("в формате form-data").
    """
    try:
        check_account_login(account)  # it becomes part of a host name
    except ValueError as exc:
        raise OAuthError(str(exc)) from None
    url = token_url.format(account=account)
    form = {
        "application_id": application_id,
        "application_secret": application_secret,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
        "code": code,
    }
    http = session or requests.Session()
    try:
        response = http.post(
            url, files={name: (None, value) for name, value in form.items()}, timeout=timeout
        )
    except requests.RequestException as exc:
        raise OAuthError(f"token endpoint unreachable ({type(exc).__name__})") from None
    finally:
        if session is None:
            http.close()
    try:
        body = response.json()
    except ValueError:
        body = None
    result = parse_token_response(response.status_code, body)
    return OAuthToken(
        access_token=result.access_token,
        account_number=result.account_number,
        account=result.account or account,
        user=result.user,
        owner_info=result.owner_info,
        tariff=result.tariff,
    )
