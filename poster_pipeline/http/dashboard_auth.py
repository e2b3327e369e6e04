"""Who may see the operators' page: the API key, as a bearer header or through a login form.

A person types ``POSTER_API_KEY`` into the login form once and gets a session cookie; a script
sends ``Authorization: Bearer <key>`` with each request. What an attacker would try, and why
it fails:

- **guessing the key**: compared in constant time (SHA-256 digests of equal length, so the
  time says nothing about the key either); each client may fail :data:`MAX_FAILURES` times
  per :data:`FAILURE_WINDOW`, then it is answered 429 until the window moves on.
- **forging or keeping a cookie**: the cookie is signed (itsdangerous, HMAC-SHA1 with a key
  derived from the API key, so rotating the key ends every session) and carries its issue
  time; it is refused after :data:`SESSION_MAX_AGE`. It is ``HttpOnly`` (no script reads it),
  ``SameSite=Lax`` (not sent with cross-site POSTs) and ``Secure`` when the page was served
  over HTTPS (uvicorn honours ``X-Forwarded-Proto`` from the addresses in
  ``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default).
- **cross-site requests**: the login and logout forms carry a signed token that must match a
  cookie (the login form's own short-lived cookie, or the session's), and a browser's
  ``Origin``, when it sends one, must name this host.

Nothing here logs the key, a cookie or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = [
    "FAILURE_WINDOW",
    "LOGIN_TOKEN_MAX_AGE",
    "MAX_FAILURES",
    "SESSION_MAX_AGE",
    "DashboardKeys",
    "LoginThrottle",
    "Session",
    "same_origin",
]

#: How long a login lasts.
SESSION_MAX_AGE = timedelta(hours=12)
#: How long a login form may stay open before it is submitted.
LOGIN_TOKEN_MAX_AGE = timedelta(hours=1)
#: Failed logins (or wrong bearer keys) a client may make per window before it waits.
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=10)
# Clients remembered at once; past this the oldest is forgotten (an attacker with that many
# addresses is not slowed by a per-address limit anyway, and memory stays bounded).
_MAX_CLIENTS = 10_000


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class Session:
    """A logged-in browser: ``csrf`` is the token its logout form must send back."""

    csrf: str


class DashboardKeys:
    """The API key's checks, and the signed cookies and tokens derived from it."""

    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("the dashboard needs an API key")
        self._key_digest = _digest(api_key)
        # A key of its own for signing, so a signature never reveals anything about the key.
        secret = hmac.new(api_key.encode(), b"poster-pipeline dashboard", hashlib.sha256)
        self._sessions = URLSafeTimedSerializer(secret.digest(), salt="dashboard-session")
        self._login_tokens = URLSafeTimedSerializer(secret.digest(), salt="dashboard-login")

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the API key, in time independent of both."""
        return hmac.compare_digest(_digest(candidate), self._key_digest)

    def new_session(self) -> tuple[str, Session]:
        """A session cookie's value, and the session it stands for."""
        session = Session(csrf=secrets.token_urlsafe(24))
        return self._sessions.dumps({"csrf": session.csrf}), session

    def session(self, cookie: str | None) -> Session | None:
        """The session of a cookie value; None when missing, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=int(SESSION_MAX_AGE.total_seconds()))
        except BadSignature:  # SignatureExpired is one
            return None
        csrf = data.get("csrf") if isinstance(data, dict) else None
        return Session(csrf=csrf) if isinstance(csrf, str) and csrf else None

    def new_login_token(self) -> str:
        """The login form's token, also set as a cookie (double submit)."""
        return self._login_tokens.dumps(secrets.token_urlsafe(24))

    def login_token_valid(self, cookie: str | None, submitted: str | None) -> bool:
        """The form's token equals the cookie's, and it is ours and fresh."""
        if (
            not cookie
            or not submitted
            or not hmac.compare_digest(cookie.encode(), submitted.encode())
        ):
            return False
        try:
            self._login_tokens.loads(cookie, max_age=int(LOGIN_TOKEN_MAX_AGE.total_seconds()))
        except BadSignature:
            return False
        return True


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's ``Origin`` header allows a form post to ``host`` (the ``Host``
    header). No ``Origin`` is allowed (older browsers, scripts: the token still protects);
    ``null`` (a sandboxed or privacy-redirected page) is not. The scheme is not compared: a
    TLS proxy in front turns https into http."""
    if origin is None:
        return True
    if not host or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


class LoginThrottle:
    """Counts each client's failed attempts over a sliding window; thread-safe.

    Per process: with ``serve --workers N`` a client gets N times the allowance, which still
    leaves a random key of ``secrets.token_urlsafe`` length far out of reach.
    """

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: timedelta = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window.total_seconds()
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may try now."""
        with self._lock:
            now = self._clock()
            failures = self._recent(client, now)
            if len(failures) < self._max:
                return None
            return max(1, int(failures[0] + self._window - now) + 1)

    def failed(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            failures = self._recent(client, now)
            failures.append(now)
            self._failures.pop(client, None)
            self._failures[client] = failures  # newest last: the oldest goes first
            while len(self._failures) > _MAX_CLIENTS:
                del self._failures[next(iter(self._failures))]
