"""Smart sync: a full sync of an account's entity when its last successful full sync is older
than the window (24 h by default), Dagster-native through a declarative automation condition.

The clock is ``sync_status.last_full_sync_at``, which only full syncs set: webhook-driven
partial syncs keep the data fresh object by object but never prove that nothing was missed
(Poster sends no supplier hooks and may drop hooks), so they do not reset it. After a failed
full sync the condition waits ``retry_after`` before asking again, and it never asks while a
run of the partition is in flight.
"""

import warnings
from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from poster_pipeline.settings import Settings
from poster_pipeline.warehouse.engine import as_utc, shared_engine
from poster_pipeline.warehouse.freshness import RETRY_AFTER, needs_full_sync
from poster_pipeline.warehouse.schema import accounts, sync_status

__all__ = ["FullSyncDue", "accounts_due", "smart_sync_condition", "smart_sync_sensor"]


def accounts_due(
    entity: str, *, now: datetime, window: timedelta, retry_after: timedelta
) -> set[str]:
    """The active accounts whose ``entity`` needs a full sync, read from the warehouse."""
    engine = shared_engine(Settings.from_env().warehouse_url)
    status = sync_status.alias("status")
    query = (
        sa.select(accounts.c.account, status.c.last_full_sync_at, status.c.last_full_attempt_at)
        .select_from(
            accounts.outerjoin(
                status, (status.c.account == accounts.c.account) & (status.c.entity == entity)
            )
        )
        .where(accounts.c.is_active)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {
        account
        for account, synced_at, attempted_at in rows
        if needs_full_sync(
            as_utc(synced_at), as_utc(attempted_at), now=now, window=window, retry_after=retry_after
        )
    }


class FullSyncDue(dg.AutomationCondition):
    """True for the partitions (active accounts) whose entity needs a full sync."""

    def __init__(self, entity: str, window: timedelta, retry_after: timedelta = RETRY_AFTER):
        self.entity = entity
        self.window = window
        self.retry_after = retry_after

    @property
    def name(self) -> str:
        return f"last full sync older than {self.window.total_seconds() / 3600:g} h"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        due = accounts_due(
            self.entity,
            now=context.evaluation_time,
            window=self.window,
            retry_after=self.retry_after,
        )
        # An account connected seconds ago may have no partition yet: the account sensor adds
        # it, and the next evaluation requests it.
        due &= context.candidate_subset.expensively_compute_partition_keys()
        return dg.AutomationResult(
            context=context,
            true_subset=context.candidate_subset.compute_intersection_with_partition_keys(due),
        )


def smart_sync_condition(entity: str, window: timedelta) -> dg.AutomationCondition:
    return (FullSyncDue(entity, window) & ~dg.AutomationCondition.in_progress()).with_label(
        "smart sync"
    )


# `use_user_code_server` is beta in Dagster 1.13, and the only way to evaluate a condition
# written in Python (FullSyncDue reads the warehouse): a deliberate choice, so its BetaWarning,
# printed by every process that loads the code location, tells nobody anything.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="Parameter `use_user_code_server`", category=dg.BetaWarning
    )
    smart_sync_sensor = dg.AutomationConditionSensorDefinition(
        "smart_sync",
        target=dg.AssetSelection.groups("poster"),
        use_user_code_server=True,  # FullSyncDue is Python that reads the warehouse
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        run_tags={"poster/sync": "full"},
        description="Requests a full sync of each entity and account whose last successful "
        "full sync is older than the smart-sync window (POSTER_SMART_SYNC_HOURS, default 24).",
    )
