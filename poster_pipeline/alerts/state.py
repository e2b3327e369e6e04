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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import alerts_sent

__all__ = ["AlertClaim", "alerts_sent", "claim_alert", "release_alert"]


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
