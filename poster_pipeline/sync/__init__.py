"""Syncing Poster into the warehouse, without Dagster: one full or partial sync of an
(account, entity), and the webhook drain that runs many partial syncs at once."""

from poster_pipeline.sync.drain import drain
from poster_pipeline.sync.procedure import (
    FullSyncResult,
    PartialSyncResult,
    SyncFailed,
    SyncServices,
    run_full_sync,
    run_partial_sync,
)

__all__ = [
    "FullSyncResult",
    "PartialSyncResult",
    "SyncFailed",
    "SyncServices",
    "drain",
    "run_full_sync",
    "run_partial_sync",
]
