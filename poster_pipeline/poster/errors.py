"""Typed errors of the Poster Web API, and the pure mapping from Poster's answers to them.

Poster reports errors in several shapes, usually with HTTP 200 (docs/poster-api.md §1.3–1.5):
``{"error": {"code": 11, "message": "..."}}``, a flat ``{"error": 42, "message": "..."}``,
``{"error": "text"}``, ``{"response": false}`` for a missing object, and sometimes a non-2xx
status with or without a JSON body. Callers act on the type: :class:`PosterTransientError`
subclasses may succeed later (the client retried them, except a connection lost while a list
was being read); the others will not.
Messages name the method and the account, never the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AUTH_CODES",
    "NOT_FOUND_CODES",
    "PLAN_RESTRICTION_CODE",
    "PosterApiError",
    "PosterAuthError",
    "PosterConnectionError",
    "PosterError",
    "PosterNotFoundError",
    "PosterPlanRestrictionError",
    "PosterProtocolError",
    "PosterRateLimitError",
    "PosterServerError",
    "PosterTimeoutError",
    "PosterTransientError",
    "error_for_body",
    "error_for_status",
    "unwrap_response",
]

AUTH_CODES = frozenset({10, 11, 12, 20, 54})  # no/bad/expired token, section not enabled, denied
NOT_FOUND_CODES = frozenset({32, 404})
PLAN_RESTRICTION_CODE = 700  # "Ограничение по тарифу": the account's plan lacks the feature


class PosterError(Exception):
    """Base of every error raised for a Poster API call."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        method: str,
        account: str,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.account = account
        self.code = code
        self.http_status = http_status
        detail = f" (Poster error {code})" if code is not None else ""
        super().__init__(f"Poster {method} for account {account}: {message}{detail}")


class PosterAuthError(PosterError):
    """The token is missing, invalid or expired, or lacks access to this API section."""


class PosterPlanRestrictionError(PosterError):
    """The account's pricing plan does not include this feature (code 700); not a rate limit."""


class PosterNotFoundError(PosterError):
    """The requested object does not exist (code 32/404 or ``response: false``)."""


class PosterApiError(PosterError):
    """Any other error Poster reported (bad parameter, unknown method, ...)."""


class PosterProtocolError(PosterError):
    """Poster answered something that is not its JSON envelope (HTML, truncated JSON, ...)."""


class PosterTransientError(PosterError):
    """A failure that was retried with backoff up to the client's bound and may pass later."""

    retryable = True


class PosterServerError(PosterTransientError):
    """Poster answered 5xx."""


class PosterRateLimitError(PosterTransientError):
    """Poster answered HTTP 429."""


class PosterConnectionError(PosterTransientError):
    """Poster could not be reached (DNS, refused, reset)."""


class PosterTimeoutError(PosterTransientError):
    """Poster did not answer within the timeout."""


def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _error_parts(body: Mapping[str, Any]) -> tuple[int | None, str] | None:
    """``(code, message)`` when ``body`` carries an error, ``None`` when it does not."""
    error = body.get("error")
    if error is None or error is False or error == 0 or error == "":
        response = body.get("response")
        if isinstance(response, Mapping) and response.get("err_code") not in (None, 0, "0"):
            # A `response` object may carry `err_code` (TS1 checks it); undocumented.
            return _as_code(response["err_code"]), str(response.get("message") or "error")
        return None
    if isinstance(error, Mapping):
        code = _as_code(error.get("code"))
        return code, str(error.get("message") or "error")
    code = _as_code(error)
    if code is not None:
        return code, str(body.get("message") or "error")
    return None, str(error)


def error_for_body(
    body: Mapping[str, Any], *, method: str, account: str, http_status: int = 200
) -> PosterError | None:
    """The typed error ``body`` reports, or ``None`` for a success body."""
    parts = _error_parts(body)
    if parts is None:
        return None
    code, message = parts
    kind: type[PosterError]
    if code in AUTH_CODES:
        kind = PosterAuthError
    elif code == PLAN_RESTRICTION_CODE:
        kind = PosterPlanRestrictionError
    elif code in NOT_FOUND_CODES:
        kind = PosterNotFoundError
    else:
        kind = PosterApiError
    return kind(message, method=method, account=account, code=code, http_status=http_status)


def error_for_status(status: int, *, method: str, account: str) -> PosterError:
    """The typed error for a non-2xx answer whose body says nothing more."""
    kind: type[PosterError]
    if status == 429:
        kind = PosterRateLimitError
    elif status >= 500:
        kind = PosterServerError
    elif status in (401, 403):
        kind = PosterAuthError
    else:
        kind = PosterApiError
    return kind(f"HTTP {status}", method=method, account=account, http_status=status)


def unwrap_response(body: Any, *, method: str, account: str) -> Any:
    """The value of ``response`` in a successful envelope; raise the typed error otherwise."""
    if not isinstance(body, Mapping):
        raise PosterProtocolError(
            f"expected a JSON object, got {type(body).__name__}", method=method, account=account
        )
    error = error_for_body(body, method=method, account=account)
    if error is not None:
        raise error
    if "response" not in body:
        raise PosterProtocolError(
            "the answer has neither 'response' nor 'error'", method=method, account=account
        )
    response = body["response"]
    if response is False:
        raise PosterNotFoundError("response: false", method=method, account=account)
    return response
