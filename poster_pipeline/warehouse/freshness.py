"""The smart-sync rule, shared by the automation condition and the sync API so they agree.

An entity of an account needs a full sync when its last successful *full* sync is older than
the window (or never happened); partial syncs do not count, since they never prove that
nothing was missed. After a failed full sync the rule waits ``retry_after`` before saying so
again, so a failing sync is retried, not hammered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["RETRY_AFTER", "needs_full_sync"]

RETRY_AFTER = timedelta(minutes=15)


def needs_full_sync(
    last_full_sync_at: datetime | None,
    last_full_attempt_at: datetime | None,
    *,
    now: datetime,
    window: timedelta,
    retry_after: timedelta = RETRY_AFTER,
) -> bool:
    """Never fully synced or synced ``window`` ago or more, and no full attempt in the last
    ``retry_after``."""
    stale = last_full_sync_at is None or now - last_full_sync_at >= window
    backing_off = last_full_attempt_at is not None and now - last_full_attempt_at < retry_after
    return stale and not backing_off
