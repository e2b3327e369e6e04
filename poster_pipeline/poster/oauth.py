"""Poster OAuth for applications (docs/poster-api.md §4).

1. Send the user to :func:`authorize_url`; Poster asks them to approve the application.
2. Poster redirects to ``redirect_uri?code=...&account=...`` (the ``state`` you passed comes
   back too on the emulator; check it before step 3).
3. :func:`exchange_code` posts the code as form data to the account's own endpoint,
   ``https://{account}.joinposter.com/api/v2/auth/access_token`` (:func:`token_url_for`), and
   returns the token, valid for two years, with no refresh token.

The ``account`` of the callback's query is only a claim: anyone can edit a link. It is the
account's own endpoint that vouches for it, since Poster redeems a code only at the endpoint
of the account that approved it; and the answer's ``account_number`` must be the token's
prefix (tokens are ``{account_number}:{32 hex}``, docs/poster-api.md §1.2), or the answer is
refused as :class:`OAuthAnswerError`.
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
    "OAuthAnswerError",
    "OAuthError",
    "OAuthToken",
    "authorize_url",
    "exchange_code",
    "parse_token_response",
    "token_url_for",
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


class OAuthAnswerError(OAuthError):
    """Poster answered the code exchange with a token, but the answer does not say for whom
    consistently (no ``account_number``, a token not prefixed with it, another login). Nothing
    of such an answer may be stored; the message never shows the token."""


def token_url_for(api_url: str) -> str:
    """The account's own token endpoint, a template with ``{account}`` for
    :func:`exchange_code`.

    On the real Poster (``api_url`` is :data:`~poster_pipeline.poster.client.DEFAULT_API_URL`)
    that is the account's subdomain (§4.3). Elsewhere (the emulator, which serves every
    account on one host) the account travels as a query parameter:
    ``{api_url}/v2/auth/access_token?account={account}``.
    """
    base = api_url.rstrip("/")
    if base == DEFAULT_API_URL:
        return DEFAULT_TOKEN_URL
    # exchange_code formats the URL with {account}; braces of the base are literal.
    escaped = base.replace("{", "{{").replace("}", "}}")
    separator = "&" if "?" in base else "?"
    return f"{escaped}/v2/auth/access_token{separator}account={{account}}"


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
    number = body.get("account_number")
    if isinstance(number, bool) or not isinstance(number, (str, int)) or not str(number).strip():
        raise OAuthAnswerError("the token answer does not say which account it is for")
    number = str(number).strip()
    if token.partition(":")[0] != number or not token.partition(":")[2]:
        # Never echo the token, not even its prefix: a token without ":" is all prefix.
        raise OAuthAnswerError(
            f"the token answer is for account number {number}, but its token is not"
        )
    return OAuthToken(
        access_token=token,
        account_number=number,
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
    """Trade the callback's ``code`` for an access token of ``account``.

    ``token_url`` contains ``{account}``: the exchange is made at the account's own endpoint
    (:func:`token_url_for`), so a code another account approved is refused there, and the
    returned token is one Poster vouches is ``account``'s. The body is sent as multipart form
    data, as Poster's docs ask ("в формате form-data").

    Raises :class:`OAuthError` when Poster refuses or cannot be reached, and
    :class:`OAuthAnswerError` when its answer is inconsistent.
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
    if result.account is not None and result.account.lower() != account.lower():
        raise OAuthAnswerError(
            f"the token answer of account {account}'s endpoint names another account"
        )
    return OAuthToken(
        access_token=result.access_token,
        account_number=result.account_number,
        account=account,
        user=result.user,
        owner_info=result.owner_info,
        tariff=result.tariff,
    )
