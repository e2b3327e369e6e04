"""Each active account's full-sync state per entity: what smart sync's condition and the
silence alert read.

Their decisions are pure (:func:`~poster_pipeline.warehouse.freshness.needs_full_sync`,
:mod:`poster_pipeline.alerts.silence`); the silence alert's de-duplication state is in
:mod:`poster_pipeline.warehouse.alerts_sent`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import accounts
from poster_pipeline.warehouse.status import read_states

__all__ = ["FullSyncState", "full_sync_states"]


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
    active = sa.select(accounts.c.account, accounts.c.connected_at).where(accounts.c.is_active)
    with engine.connect() as conn:
        connected = {row.account: as_utc(row.connected_at) for row in conn.execute(active)}
        synced = read_states(conn, sorted(connected), names)
    states: list[FullSyncState] = []
    for account in sorted(connected):
        for entity in names:
            state = synced.get((account, entity))
            error = state.full_error if state else None
            states.append(
                FullSyncState(
                    account,
                    entity,
                    connected[account],
                    last_full_sync_at=state.last_full_sync_at if state else None,
                    last_full_attempt_at=state.last_full_attempt_at if state else None,
                    last_full_error=error.message if error else None,
                )
            )
    return states
