"""What the silence alert reads and writes: each active account's full-sync state per entity,
and its de-duplication state (``alerts_sent`` rows under one key prefix).

The decision is :mod:`poster_pipeline.alerts.silence`, pure. Claims are made in batches, not
one transaction per key as :func:`poster_pipeline.alerts.state.claim_alert` does: when the
daemon stops, every pair of every restaurant goes silent at once (500 restaurants × 7
entities: 6.9 s one by one, 0.9 s in batches), and a sensor evaluation has a time limit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import accounts, alerts_sent, sync_status

__all__ = [
    "FullSyncState",
    "alerted_keys",
    "claim_alerts",
    "forget_alerts",
    "full_sync_states",
    "release_alerts",
]

#: Keys per statement: SQLite allows 32 766 bound parameters in one, and three go per key.
BATCH = 1000
#: What a given-back claim's time becomes: long enough ago for any window to have passed.
NEVER_SENT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FullSyncState:
    """One active account × catalogue entity: when the account was connected, and its last
    successful full sync, last full attempt and the full sync's standing error (all None when
    ``sync_status`` has no row: nothing ever ran for the pair). Times are aware, UTC."""

    account: str
    entity: str
    connected_at: datetime
    last_full_sync_at: datetime | None = None
    last_full_attempt_at: datetime | None = None
    last_full_error: str | None = None


def full_sync_states(engine: Engine, entities: Iterable[str]) -> list[FullSyncState]:
    """Every active account × each of ``entities``, whether ``sync_status`` has a row or not
    (an account the syncs skip entirely has none); ordered by account, then ``entities``'
    order. Deactivated accounts and ``sync_status`` rows of other entities are left out."""
    names = list(entities)
    status = sa.select(
        sync_status.c.account,
        sync_status.c.entity,
        sync_status.c.last_full_sync_at,
        sync_status.c.last_full_attempt_at,
        sync_status.c.last_full_error,
    ).where(sync_status.c.entity.in_(names))
    active = sa.select(accounts.c.account, accounts.c.connected_at).where(accounts.c.is_active)
    with engine.connect() as conn:
        connected = {row.account: as_utc(row.connected_at) for row in conn.execute(active)}
        rows = {(row.account, row.entity): row for row in conn.execute(status)}
    states: list[FullSyncState] = []
    for account in sorted(connected):
        for entity in names:
            row = rows.get((account, entity))
            states.append(
                FullSyncState(
                    account,
                    entity,
                    connected[account],
                    last_full_sync_at=as_utc(row.last_full_sync_at) if row else None,
                    last_full_attempt_at=as_utc(row.last_full_attempt_at) if row else None,
                    last_full_error=row.last_full_error if row else None,
                )
            )
    return states


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


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(alerts_sent)


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
