"""The nightly safety net: a full sync of every entity for every active account at 03:00 in
the account's own time zone (``accounts.time_zone``, else ``POSTER_TIMEZONE``).

One Dagster schedule ticks every 15 minutes in UTC, which meets 03:00 exactly in every zone
in use (offsets are whole quarter hours: Asia/Kolkata +05:30, Asia/Kathmandu +05:45). Each
tick asks :func:`~poster_pipeline.orchestration.nightly.due_nightly` which accounts passed
their local 03:00 in the last ``NIGHTLY_LOOKBACK`` and requests those this schedule has not
launched a run for yet (same account, same local date): one sync per local date across
daylight-saving changes.

Why look back rather than only since the previous tick: Dagster does not catch up missed
ticks of a schedule without a partition set (it evaluates only the latest one and logs "has
no partition set, so not trying to catch up"), so an account whose 03:00 fell while the
daemon was restarting would otherwise wait a day. An account whose 03:00 fell in a longer
outage waits for smart sync, which runs a full sync once the last one is over 24 hours old.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.nightly import due_nightly
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import WarehouseResource
from poster_pipeline.orchestration.tags import PARTITION_TAG, SCHEDULE_NAME_TAG, SYNC_TAG
from poster_pipeline.time_zones import time_zone
from poster_pipeline.warehouse.status import SyncKind

__all__ = ["NIGHTLY_CRON", "NIGHTLY_LOOKBACK", "NIGHTLY_TICK", "nightly_full_sync_schedule"]

NAME = "nightly_full_sync"
NIGHTLY_TICK = timedelta(minutes=15)
NIGHTLY_CRON = "*/15 * * * *"  # every NIGHTLY_TICK, in UTC
NIGHTLY_LOOKBACK = timedelta(hours=6)
LOCAL_DATE_TAG = "poster/nightly_date"
TIME_ZONE_TAG = "poster/time_zone"


def nightly_full_sync_schedule(timezone: str = "UTC") -> dg.ScheduleDefinition:
    """The ``nightly_full_sync`` schedule; ``timezone`` (``POSTER_TIMEZONE``) is the zone of
    accounts without a stored one. An unknown zone is a ``ValueError`` here, at load time."""
    time_zone(timezone)

    @dg.schedule(
        name=NAME,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone="UTC",
        job=full_sync_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Full sync of every entity for every active account at 03:00 in the "
        f"account's time zone (else {timezone}), whatever webhooks and smart sync did during "
        "the day. Ticks every 15 minutes; a tick with no account at 03:00 is skipped.",
    )
    def _nightly(
        context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        tick = (context.scheduled_execution_time or datetime.now(UTC)).astimezone(UTC)
        zones: dict[str, str] = {}
        unknown: dict[str, str] = {}  # account → its stored zone that zoneinfo does not know
        for account in warehouse.accounts().list(active_only=True):
            zones[account.account] = account.time_zone or timezone
            try:
                time_zone(zones[account.account])
            except ValueError:
                unknown[account.account] = zones[account.account]
                zones[account.account] = timezone
        since = tick - NIGHTLY_LOOKBACK
        due = due_nightly(zones, since, tick)
        if due:
            launched = _launched(context.instance, since)
            due = [d for d in due if (d.account, d.local_date.isoformat()) not in launched]
        if not due:
            return dg.SkipReason("no active account is at or past 03:00 local time without its run")
        for d in due:  # said when its sync is requested, not on every tick
            if d.account in unknown:
                context.log.warning(
                    f"account {d.account}: its time zone {unknown[d.account]!r} is not an IANA "
                    f"time zone; synced at 03:00 {timezone} (POSTER_TIMEZONE) instead"
                )
        partitions = set(context.instance.get_dynamic_partitions(ACCOUNTS))
        requests = [
            dg.RunRequest(
                # One per account and local date: a re-evaluated tick launches nothing twice.
                run_key=f"nightly:{d.account}:{d.local_date.isoformat()}",
                partition_key=d.account,
                tags={
                    SYNC_TAG: SyncKind.FULL.value,
                    LOCAL_DATE_TAG: d.local_date.isoformat(),
                    TIME_ZONE_TAG: d.time_zone,
                },
            )
            for d in due
            if d.account in partitions  # the account sensor adds new ones within seconds
        ]
        return requests or dg.SkipReason(
            "the accounts at 03:00 local time have no partition yet: "
            + ", ".join(d.account for d in due)
        )

    return _nightly


def _launched(instance: dg.DagsterInstance, since: datetime) -> set[tuple[str, str]]:
    """(account, local date) of the runs this schedule launched since ``since``, whatever their
    outcome: a failed nightly sync is not retried by the next tick (smart sync backs off and
    retries it; the failure alert reports it)."""
    records = instance.get_run_records(
        dg.RunsFilter(tags={SCHEDULE_NAME_TAG: NAME}, created_after=since)
    )
    return {
        (r.dagster_run.tags.get(PARTITION_TAG, ""), r.dagster_run.tags.get(LOCAL_DATE_TAG, ""))
        for r in records
    }
