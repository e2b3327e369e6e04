"""The nightly safety net: a full sync of every entity for every active account at 03:00."""

import dagster as dg

from poster_pipeline.orchestration.assets import SYNC_TAG
from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import WarehouseResource

__all__ = ["nightly_full_sync_schedule"]


def nightly_full_sync_schedule(timezone: str = "UTC") -> dg.ScheduleDefinition:
    """03:00 in ``timezone`` (POSTER_TIMEZONE): one full-sync run per active account."""

    @dg.schedule(
        name="nightly_full_sync",
        cron_schedule="0 3 * * *",
        execution_timezone=timezone,
        job=full_sync_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Full sync of every entity for every active account at 03:00 {timezone}, "
        "whatever webhooks and smart sync did during the day.",
    )
    def _nightly(
        context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        partitions = set(context.instance.get_dynamic_partitions(ACCOUNTS))
        active = [a.account for a in warehouse.accounts().list(active_only=True)]
        tick = context.scheduled_execution_time.isoformat()
        requests = [
            dg.RunRequest(
                run_key=f"nightly:{tick}:{account}",
                partition_key=account,
                tags={SYNC_TAG: "full"},
            )
            for account in active
            if account in partitions  # the account sensor adds new ones within seconds
        ]
        return requests or dg.SkipReason("no active account has a partition yet")

    return _nightly
