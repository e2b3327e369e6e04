"""Alerts about webhook events that died: retries are used up and only a person can help.

The sensor remembers which dead events it already reported in its cursor, as a watermark on
``webhook_events.updated_at`` (the time an event became dead) plus the (id, updated_at) pairs
it reported in the last :data:`OVERLAP` before the watermark.

Why not the largest id reported: ids are given at receipt, and an event dies after its last
attempt, so an old event (small id) often dies after a newer one (larger id) and would be
skipped forever. Why the overlap: ``updated_at`` is the time a run *started*, written when the
run's transaction commits, so a row may appear with an ``updated_at`` already behind the
watermark; every evaluation re-reads the last hour and skips the pairs it already reported.
An event retried with ``queue retry-dead`` that dies again has a new ``updated_at``, so it is
reported again. The assumption: a sync commits within :data:`OVERLAP` of its start (the
queue's claim lease is far shorter).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.warehouse.queue import DeadEvent, dead_events

__all__ = [
    "OVERLAP",
    "RETRY_COMMAND",
    "DeadEvent",
    "DeadEventsCursor",
    "dead_events_alert",
    "find_newly_dead",
]

OVERLAP = timedelta(hours=1)
RETRY_COMMAND = "poster-pipeline queue retry-dead"
LISTED_OBJECTS = 10
GROUP_ERROR_CHARS = 300


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class DeadEventsCursor:
    """The dead events already reported (see the module docstring); empty = none yet."""

    watermark: datetime | None = None
    seen: frozenset[tuple[int, datetime]] = frozenset()

    def to_json(self) -> str:
        by_time: dict[str, list[int]] = defaultdict(list)  # events die in batches: compact
        for event_id, moment in sorted(self.seen):
            by_time[moment.isoformat()].append(event_id)
        watermark = self.watermark.isoformat() if self.watermark else None
        return json.dumps({"watermark": watermark, "seen": by_time}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> DeadEventsCursor:
        """Parse a cursor; raises ``ValueError`` for one this code did not write."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            watermark = data["watermark"]
            seen = frozenset(
                (int(event_id), _utc(datetime.fromisoformat(moment)))
                for moment, ids in data["seen"].items()
                for event_id in ids
            )
            return cls(_utc(datetime.fromisoformat(watermark)) if watermark else None, seen)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a dead-events cursor: {text[:80]!r} ({exc})") from None


def find_newly_dead(
    engine: Engine, cursor: DeadEventsCursor, *, overlap: timedelta = OVERLAP
) -> tuple[list[DeadEvent], DeadEventsCursor]:
    """The dead events not reported yet (oldest first), and the cursor that includes them."""
    since = None if cursor.watermark is None else cursor.watermark - overlap
    with engine.connect() as conn:
        dead = dead_events(conn, died_after=since)
    if not dead:
        return [], cursor
    new = [e for e in dead if (e.id, e.updated_at) not in cursor.seen]
    watermark = max(dead[-1].updated_at, cursor.watermark or dead[-1].updated_at)
    seen = frozenset((e.id, e.updated_at) for e in dead if e.updated_at > watermark - overlap)
    return new, DeadEventsCursor(watermark, seen)


def dead_events_alert(dead: Sequence[DeadEvent], *, link: str | None = None) -> Alert:
    """One alert for ``dead`` (not empty): counts per account and entity, the last errors,
    and the command that puts the events back in the queue."""
    if not dead:
        raise ValueError("no dead events to alert about")
    groups: dict[tuple[str, str], list[DeadEvent]] = defaultdict(list)
    for event in dead:
        groups[(event.account, event.entity or "(no entity)")].append(event)
    details = ["Dead since the last alert, by account and entity:"]
    for (account, entity), group in sorted(groups.items()):
        pairs = sorted({(e.object, e.object_id) for e in group})
        objects = [f"{name} {object_id}" for name, object_id in pairs]
        listed = ", ".join(objects[:LISTED_OBJECTS])
        if len(objects) > LISTED_OBJECTS:
            listed += f", … ({len(objects)} objects)"
        last = max(group, key=lambda e: (e.updated_at, e.id)).last_error or "(no error recorded)"
        if len(last) > GROUP_ERROR_CHARS:
            last = last[:GROUP_ERROR_CHARS] + " …"
        details.append(f"- {account} / {entity}: {len(group)} ({listed}); last error: {last}")
    details += [
        "",
        "Dead events are no longer retried. Once the cause is fixed, put them back in the queue:",
        f"    {RETRY_COMMAND}",
    ]
    newest = max(dead, key=lambda e: (e.updated_at, e.id))
    count = len(dead)
    subject = f"poster-pipeline: {count} webhook event{'s are' if count != 1 else ' is'} dead"
    accounts = sorted({e.account for e in dead})
    return Alert(
        subject=subject,
        account=", ".join(accounts),
        entities=tuple(sorted({entity for _, entity in groups})),
        error=newest.last_error or "(no error recorded)",
        link=link,
        details=tuple(details),
    )
