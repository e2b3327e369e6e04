"""What the silence alert reads: each active account's full-sync state per entity.

The decision is :mod:`poster_pipeline.alerts.silence`, pure; its de-duplication state is in
:mod:`poster_pipeline.warehouse.alerts_sent`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import accounts, sync_status

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
