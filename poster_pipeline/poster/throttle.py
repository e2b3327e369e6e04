"""A per-token request throttle.

Poster documents no rate limit, and practitioners keep under 5 requests/s per token
(docs/poster-api.md §1.6). Clients that share a token in one process share one
:class:`RequestThrottle`, so two assets syncing the same account in one process together stay
under the rate.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

__all__ = ["RequestThrottle", "throttle_for_token"]


class RequestThrottle:
    """Spaces calls at least ``1 / requests_per_second`` apart, across threads.

    Each caller reserves the next free slot under a lock and sleeps outside it, so waiting
    callers do not hold each other up beyond their slot.
    """

    def __init__(
        self,
        requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        self.interval = 1.0 / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until this call may go out; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay


_throttles: dict[tuple[str, float], RequestThrottle] = {}
_throttles_lock = threading.Lock()


def throttle_for_token(token: str, requests_per_second: float) -> RequestThrottle:
    """The process-wide throttle of ``token`` at this rate (the token itself is not kept)."""
    key = (hashlib.sha256(token.encode()).hexdigest(), requests_per_second)
    with _throttles_lock:
        throttle = _throttles.get(key)
        if throttle is None:
            throttle = _throttles[key] = RequestThrottle(requests_per_second)
        return throttle
