"""IANA time zones: the one check of a zone name, for the CLI, the warehouse and the schedule."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["time_zone"]


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a ``ValueError`` a person can act on when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone (e.g. Europe/Kyiv, America/New_York, UTC)"
        ) from None
