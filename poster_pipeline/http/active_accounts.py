"""The names of the active connected accounts, cached so a webhook costs no ``accounts`` query.

The answer only decides whether a verified hook is stored ``pending`` or ``ignored``; it is
never a reason to refuse one. A hit trusts the cache for ``ttl`` seconds. A miss (a hook from
an account the cache does not hold) reloads at once when the cache is older than
``miss_reload_seconds``: a newly connected account is recognised within about a second rather
than a whole TTL, and hooks from an account that is not connected cost at most one query per
that interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from poster_pipeline.http.database import describe_error
from poster_pipeline.warehouse.accounts import AccountStore

__all__ = ["ActiveAccounts", "load_active_accounts"]

log = logging.getLogger(__name__)


def load_active_accounts(engine: Engine) -> frozenset[str]:
    """The logins of the active accounts (no token is read or decrypted)."""
    return frozenset(AccountStore(engine).active_names())


class ActiveAccounts:
    """A thread-safe, time-limited cache of :func:`load_active_accounts`.

    :meth:`current` blocks while it reloads, so call it from a worker thread. When a reload
    fails, the previous set is kept and used for another ``ttl`` (logged); only a cache that
    never loaded lets the error through, since answering "not connected" for every account
    would record real changes as ignored.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float,
        miss_reload_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._miss_reload = min(miss_reload_seconds, ttl)
        self._clock = clock
        self._lock = threading.Lock()
        # One tuple, replaced whole, so readers without the lock see a consistent pair.
        self._cached: tuple[frozenset[str], float] | None = None

    def current(self, account: str | None = None) -> frozenset[str]:
        """The active accounts, reloaded if stale, or if ``account`` is missing from them
        and they were loaded more than ``miss_reload_seconds`` ago."""
        cached = self._cached
        if cached is not None and not self._stale(cached, account):
            return cached[0]
        with self._lock:
            if self._cached is not cached and self._cached is not None:
                return self._cached[0]  # another thread reloaded while this one waited
            now = self._clock()
            try:
                names = load_active_accounts(self._engine)
            except SQLAlchemyError as exc:
                if cached is None:
                    raise
                log.warning(
                    "could not reload the active accounts, using the previous list: %s",
                    describe_error(exc),
                )
                names = cached[0]
            self._cached = (names, now)
            return names

    def _stale(self, cached: tuple[frozenset[str], float], account: str | None) -> bool:
        names, loaded_at = cached
        age = self._clock() - loaded_at
        if age >= self._ttl:
            return True
        return account is not None and account not in names and age >= self._miss_reload
