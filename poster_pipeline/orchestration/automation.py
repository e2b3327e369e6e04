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
from sqlalchemy.engine import Engine

from poster_pipeline.orchestration.resources import WarehouseResource
from poster_pipeline.orchestration.tags import SYNC_TAG
from poster_pipeline.warehouse.freshness import RETRY_AFTER, needs_full_sync
from poster_pipeline.warehouse.full_syncs import full_sync_states
from poster_pipeline.warehouse.status import SyncKind

__all__ = ["FullSyncDue", "accounts_due", "smart_sync_condition", "smart_sync_sensor"]


def accounts_due(
    engine: Engine, entity: str, *, now: datetime, window: timedelta, retry_after: timedelta
) -> set[str]:
    """The active accounts whose ``entity`` needs a full sync, by their full-sync clocks in
    ``engine``'s warehouse."""
    return {
        state.account
        for state in full_sync_states(engine, [entity])
        if needs_full_sync(
            state.last_full_sync_at,
            state.last_full_attempt_at,
            now=now,
            window=window,
            retry_after=retry_after,
        )
    }


class FullSyncDue(dg.AutomationCondition):
    """True for the partitions (active accounts) whose entity needs a full sync.

    Dagster gives a condition no resources: it holds the code location's configured
    ``warehouse`` itself, and resolves it (its ``EnvVar``s) when evaluated, in the code server
    (the condition is Python, so it is never serialised: the UI gets its name only).
    """

    def __init__(
        self,
        entity: str,
        window: timedelta,
        warehouse: WarehouseResource,
        retry_after: timedelta = RETRY_AFTER,
    ):
        self.entity = entity
        self.window = window
        self.warehouse = warehouse
        self.retry_after = retry_after

    @property
    def name(self) -> str:
        return f"last full sync older than {self.window.total_seconds() / 3600:g} h"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        warehouse = self.warehouse.process_config_and_initialize()
        due = accounts_due(
            warehouse.engine(),
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


def smart_sync_condition(
    entity: str, window: timedelta, warehouse: WarehouseResource
) -> dg.AutomationCondition:
    """Smart sync of ``entity``, reading the full-sync clocks in ``warehouse``."""
    return (
        FullSyncDue(entity, window, warehouse) & ~dg.AutomationCondition.in_progress()
    ).with_label("smart sync")


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
        run_tags={SYNC_TAG: SyncKind.FULL.value},
        description="Requests a full sync of each entity and account whose last successful "
        "full sync is older than the smart-sync window (POSTER_SMART_SYNC_HOURS, default 24).",
    )
