"""Counts of Web API calls received, per method and per account.

Tests assert how many calls a sync made (a partial sync of one object should cost one
``menu.getIngredient``, not a full list); every request counts, including ones refused for
their token or answered by a fault.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["NO_ACCOUNT", "CallCounter"]

NO_ACCOUNT = "(unknown)"  # the by_account key of calls whose token is missing or unknown


class CallCounter:
    """Call counts since start or since the last :meth:`reset`."""

    def __init__(self) -> None:
        self._by_account: dict[str, Counter[str]] = {}

    def record(self, method: str, account: str | None) -> None:
        self._by_account.setdefault(account or NO_ACCOUNT, Counter())[method] += 1

    def snapshot(self) -> dict[str, Any]:
        by_method: Counter[str] = Counter()
        for counts in self._by_account.values():
            by_method.update(counts)
        return {
            "total": sum(by_method.values()),
            "by_method": dict(sorted(by_method.items())),
            "by_account": {
                account: dict(sorted(counts.items()))
                for account, counts in sorted(self._by_account.items())
            },
        }

    def reset(self) -> None:
        self._by_account.clear()
