"""Alert de-duplication state: the ``alerts_sent`` table and the claim on a window.

A sync that fails every few minutes (a revoked token, Poster down) must not send an alert
every few minutes. Each alert is about a *key* (for a failed run: the asset key and the
partition); at most one alert per key goes out per window, and the alerts held back are
counted so the next one that goes out says how many there were.

The state is in the warehouse, not in the sensor's cursor: the run-failure sensor's cursor
belongs to Dagster, and the state must survive a restart of the daemon and be shared by
every code server that evaluates the sensor. The table is in the warehouse schema (migration
``0003``), so ``poster-pipeline db upgrade`` creates it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import alerts_sent

__all__ = [
    "AlertClaim",
    "alerted_keys",
    "alerts_sent",
    "claim_alert",
    "claim_alerts",
    "forget_alerts",
    "release_alert",
    "release_alerts",
]

#: Keys per statement: SQLite allows 32 766 bound parameters in one, and three go per key.
BATCH = 1000
#: What a given-back claim's time becomes: long enough ago for any window to have passed.
NEVER_SENT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AlertClaim:
    """The right to send the alert about ``key`` now.

    ``suppressed`` alerts were held back since the previous one (sent at
    ``previous_sent_at``, None if this is the first); the message should say so.
    """

    key: str
    sent_at: datetime
    previous_sent_at: datetime | None
    suppressed: int


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(alerts_sent)


def claim_alert(engine: Engine, key: str, *, now: datetime, window: timedelta) -> AlertClaim | None:
    """Claim the alert about ``key`` at ``now``, or count it as suppressed and return None.

    The claim is recorded before the alert is sent (so two evaluators cannot both send);
    call :func:`release_alert` if no target took it. The row is locked for the decision
    (PostgreSQL ``FOR UPDATE``; SQLite serialises writers), so concurrent claims of one key
    are decided one after the other. A ``window`` of zero disables de-duplication.
    """
    now = as_utc(now)
    with engine.begin() as conn:
        inserted = conn.execute(
            _insert(conn)
            .values(key=key, last_sent_at=now, count_suppressed=0)
            .on_conflict_do_nothing(index_elements=[alerts_sent.c.key])
            .returning(alerts_sent.c.key)
        ).scalar_one_or_none()
        if inserted is not None:
            return AlertClaim(key, now, previous_sent_at=None, suppressed=0)
        last_sent_at, suppressed = conn.execute(
            sa.select(alerts_sent.c.last_sent_at, alerts_sent.c.count_suppressed)
            .where(alerts_sent.c.key == key)
            .with_for_update()
        ).one()
        last_sent_at = as_utc(last_sent_at)
        row = alerts_sent.c.key == key
        if now - last_sent_at < window:
            conn.execute(
                sa.update(alerts_sent)
                .where(row)
                .values(count_suppressed=alerts_sent.c.count_suppressed + 1)
            )
            return None
        conn.execute(sa.update(alerts_sent).where(row).values(last_sent_at=now, count_suppressed=0))
    return AlertClaim(key, now, previous_sent_at=last_sent_at, suppressed=suppressed)


def release_alert(engine: Engine, claim: AlertClaim) -> None:
    """Give a claim back after no target took the alert.

    The window reopens (the next failure alerts at once) and the undelivered alert counts as
    suppressed, so the next message still mentions it. A newer claim of the key is kept.
    """
    reopened = claim.previous_sent_at or datetime(1970, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.update(alerts_sent)
            .where(alerts_sent.c.key == claim.key, alerts_sent.c.last_sent_at == claim.sent_at)
            .values(
                last_sent_at=reopened,
                count_suppressed=alerts_sent.c.count_suppressed + claim.suppressed + 1,
            )
        )


# -- many keys at once (the silence alert) ------------------------------------------------
#
# Claims are made in batches, not one transaction per key as claim_alert does: when the
# daemon stops, every pair of every restaurant goes silent at once (measured with 500
# restaurants × 7 entities: 6.9 s one by one, 0.9 s in batches), and a sensor evaluation has
# a time limit.


def alerted_keys(engine: Engine, prefix: str) -> dict[str, datetime]:
    """The ``alerts_sent`` keys that start with ``prefix``, with the time each alert went out
    (1970 for one whose claim was given back because no target took it)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = sa.select(alerts_sent.c.key, alerts_sent.c.last_sent_at).where(
        alerts_sent.c.key.like(f"{escaped}%", escape="\\")
    )
    with engine.connect() as conn:
        return {row.key: as_utc(row.last_sent_at) for row in conn.execute(query)}


def forget_alerts(engine: Engine, keys: Collection[str]) -> int:
    """Delete the de-duplication state of ``keys``, so the next alert about one goes out at
    once; returns how many rows there were."""
    if not keys:
        return 0
    with engine.begin() as conn:
        return conn.execute(
            sa.delete(alerts_sent).where(alerts_sent.c.key.in_(list(keys)))
        ).rowcount


def claim_alerts(
    engine: Engine, keys: Sequence[str], *, now: datetime, window: timedelta
) -> set[str]:
    """Claim the alert about each of ``keys`` at ``now``: the keys never alerted, or alerted
    ``window`` ago or more. Returns the keys claimed; the others were alerted meanwhile (by
    another evaluator: the upsert's row lock decides between two at once)."""
    now, cutoff = as_utc(now), as_utc(now) - window
    claimed: set[str] = set()
    with engine.begin() as conn:
        for start in range(0, len(keys), BATCH):
            insert = _insert(conn).values(
                [
                    {"key": key, "last_sent_at": now, "count_suppressed": 0}
                    for key in keys[start : start + BATCH]
                ]
            )
            upsert = insert.on_conflict_do_update(
                index_elements=[alerts_sent.c.key],
                set_={"last_sent_at": now, "count_suppressed": 0},
                where=alerts_sent.c.last_sent_at <= cutoff,
            ).returning(alerts_sent.c.key)
            claimed.update(conn.execute(upsert).scalars())
    return claimed


def release_alerts(engine: Engine, keys: Collection[str], *, claimed_at: datetime) -> None:
    """Give back the claims of ``keys`` made at ``claimed_at`` after no target took the alert:
    the next evaluation claims them again. A newer claim of a key is kept."""
    names = list(keys)
    with engine.begin() as conn:
        for start in range(0, len(names), BATCH):
            conn.execute(
                sa.update(alerts_sent)
                .where(
                    alerts_sent.c.key.in_(names[start : start + BATCH]),
                    alerts_sent.c.last_sent_at == as_utc(claimed_at),
                )
                .values(last_sent_at=NEVER_SENT)
            )
