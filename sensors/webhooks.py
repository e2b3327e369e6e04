"""The webhook-queue drain's trigger: claimed events start a drain run when none is active.

A tick claims every due event (up to ``claim_batch``) and launches one ``webhook_drain`` run
that applies all their (account, entity) groups, whatever the number of restaurants: the runs
launched by the webhook path are bounded by ticks (docs/drain.md). A drain run keeps claiming
newly due events itself for a while, so while one is active the sensor stands back, unless an
event has waited ``drain_handoff_s`` (the active run is lost, stuck or saturated).
"""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy.engine import Engine

from poster_pipeline.orchestration.drain import DRAIN_OP, DrainConfig, webhook_drain_job
from poster_pipeline.orchestration.partitions import ACCOUNTS, accounts_partitions
from poster_pipeline.orchestration.resources import WarehouseResource, WebhookQueueResource
from poster_pipeline.orchestration.tags import PRIORITY_TAG, SYNC_TAG
from poster_pipeline.settings import Settings
from poster_pipeline.warehouse.queue import EventGroup, group_claimed, oldest_due
from poster_pipeline.warehouse.status import SyncKind

# Dagster's sensor loop runs a sensor at most every ~5 s whatever is asked (docs/dagster-notes.md
# §2); asking for 1 s gets that 5 s, asking for 5 s gets 5–10 s.
INTERVAL_SECONDS = Settings.from_env().webhook_sensor_interval_s


def drain_request(claim_id: str, groups: list[EventGroup]) -> dg.RunRequest:
    """The run that applies every group of a claim."""
    return dg.RunRequest(
        run_key=f"webhooks:{claim_id}",
        job_name=webhook_drain_job.name,
        run_config=dg.RunConfig(ops={DRAIN_OP: DrainConfig(claim_id=claim_id)}),
        tags={
            SYNC_TAG: SyncKind.PARTIAL.value,
            # Dequeued before full syncs: webhook latency should not wait behind a nightly run.
            PRIORITY_TAG: "10",
            "poster/events": str(sum(len(g.events) for g in groups)),
            "poster/groups": str(len(groups)),
            "poster/accounts": str(len({g.account for g in groups})),
        },
    )


_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _drain_active(instance: dg.DagsterInstance) -> bool:
    active = dg.RunsFilter(job_name=webhook_drain_job.name, statuses=_ACTIVE)
    return bool(instance.get_run_ids(filters=active, limit=1))


def _waited_too_long(engine: Engine, webhook_queue: WebhookQueueResource) -> bool:
    now = datetime.now(UTC)
    due_since = oldest_due(engine, now=now)
    return due_since is not None and (now - due_since).total_seconds() >= (
        webhook_queue.drain_handoff_s
    )


@dg.sensor(
    name="webhook_queue",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    job=webhook_drain_job,
    description="Claims due webhook events from the warehouse's webhook_events queue and "
    "launches one webhook_drain run that re-fetches the changed objects of every account.",
)
def webhook_queue_sensor(
    context: dg.SensorEvaluationContext,
    warehouse: WarehouseResource,
    webhook_queue: WebhookQueueResource,
) -> dg.SensorResult | dg.SkipReason:
    engine = warehouse.engine()
    if _drain_active(context.instance) and not _waited_too_long(engine, webhook_queue):
        return dg.SkipReason("a webhook_drain run is active and claims due events itself")
    claim, claimed = webhook_queue.take(engine)
    if not claimed:
        return dg.SkipReason("no webhook event is due")
    try:
        groups = group_claimed(claimed)
        known = set(context.instance.get_dynamic_partitions(ACCOUNTS))
        new_accounts = sorted({g.account for g in groups} - known)
        result = dg.SensorResult(
            run_requests=[drain_request(claim.id, groups)],
            # Added before the run starts: its materializations name these partitions.
            dynamic_partitions_requests=(
                [accounts_partitions.build_add_request(new_accounts)] if new_accounts else []
            ),
        )
    except Exception:
        # No run will settle this claim: give the events back now rather than after the lease.
        claim.give_back(now=datetime.now(UTC))
        raise
    context.log.info(f"claim {claim.id}: {len(claimed)} events, {len(groups)} groups → 1 run")
    return result
