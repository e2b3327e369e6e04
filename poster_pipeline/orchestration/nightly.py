"""When each restaurant's nightly sync is due: 03:00 on its own wall clock.

Pure functions, no Dagster and no database: the schedule asks, once per tick, which accounts
passed their local 03:00 in a window of time. A window ``(after, until]`` is half-open, so
consecutive windows cover time exactly once, and each local date has exactly one nightly
instant, whatever the daylight-saving transitions do:

- spring forward, when 03:00 does not exist that night (Europe/Kyiv jumps from 03:00 to
  04:00), the sync is due at the first instant whose wall clock reads 03:00 or later, the
  transition itself;
- fall back, when 03:00 occurs twice (a zone that repeats the 03:00 hour), it is due at the
  first occurrence only;
- a local date the zone skips entirely (Pacific/Apia skipped 2011-12-30) has no 03:00 and no
  sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from poster_pipeline.time_zones import time_zone

__all__ = ["NIGHTLY_AT", "NightlyDue", "due_nightly", "nightly_instant"]

NIGHTLY_AT = time(3, 0)


@dataclass(frozen=True)
class NightlyDue:
    """One account's nightly sync: the local date it is for and the instant (UTC) it fell due."""

    account: str
    time_zone: str
    local_date: date
    due_at: datetime


def nightly_instant(day: date, zone: ZoneInfo, at: time = NIGHTLY_AT) -> datetime | None:
    """The first instant (UTC) at which the wall clock of ``zone`` reads ``at`` or later on
    ``day``; ``None`` when ``day`` has no such instant (the zone skipped the rest of the day).
    """
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if _wall(first, zone) == wall:
        return first
    # ``wall`` falls in a gap. fold=1 reads it with the offset after the gap, an instant
    # before the transition (its wall clock reads earlier); fold=0 with the offset before,
    # an instant after it. The first instant reading ``wall`` or later is the transition:
    # find it to the second (transitions fall on whole seconds).
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    instant = datetime.fromtimestamp(high, UTC)
    return instant if _wall(instant, zone).date() == day else None


def due_nightly(
    zones: Mapping[str, str], after: datetime, until: datetime, at: time = NIGHTLY_AT
) -> list[NightlyDue]:
    """The accounts whose local ``at`` falls in ``(after, until]``, by account then date.

    ``zones`` maps each account to its IANA time zone (resolve defaults before calling);
    ``after`` and ``until`` are aware datetimes. A window longer than a day yields one entry
    per local date it covers.
    """
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("the tick window needs aware datetimes")
    due: list[NightlyDue] = []
    for account in sorted(zones):
        zone = time_zone(zones[account])
        # The local dates the window touches, one either side: offsets reach ±14 h and a
        # date's 03:00 may be late (after a gap), so look one day wider than the window.
        day = after.astimezone(zone).date() - timedelta(days=1)
        last = until.astimezone(zone).date() + timedelta(days=1)
        while day <= last:
            instant = nightly_instant(day, zone, at)
            if instant is not None and after < instant <= until:
                due.append(NightlyDue(account, zones[account], day, instant))
            day += timedelta(days=1)
    return due


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)
