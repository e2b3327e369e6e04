"""The webhook-queue drain's trigger: claimed events become one drain run per sensor tick.

Each tick claims every due event (up to ``claim_batch``) and launches one ``webhook_drain``
run that applies all their (account, entity) groups, whatever the number of restaurants: the
runs launched by the webhook path are bounded by ticks (docs/drain.md).
"""

import os
from datetime import UTC, datetime

import dagster as dg

from poster_pipeline.orchestration.assets import SYNC_TAG
from poster_pipeline.orchestration.drain import DRAIN_OP, DrainConfig, webhook_drain_job
from poster_pipeline.orchestration.partitions import ACCOUNTS, accounts_partitions
from poster_pipeline.orchestration.resources import WarehouseResource, WebhookQueueResource
from poster_pipeline.warehouse.queue import Claim, EventGroup, group_claimed

# Dagster's sensor loop runs a sensor at most every ~5 s whatever is asked (dagster-notes.md
# §2); asking for 1 s gets that 5 s, asking for 5 s gets 5–10 s.
INTERVAL_SECONDS = int(os.environ.get("POSTER_WEBHOOK_SENSOR_INTERVAL", "1"))


def drain_request(claim_id: str, groups: list[EventGroup]) -> dg.RunRequest:
    """The run that applies every group of a claim."""
    return dg.RunRequest(
        run_key=f"webhooks:{claim_id}",
        job_name=webhook_drain_job.name,
        run_config=dg.RunConfig(ops={DRAIN_OP: DrainConfig(claim_id=claim_id)}),
        tags={
            SYNC_TAG: "partial",
            # Dequeued before full syncs: webhook latency should not wait behind a nightly run.
            "dagster/priority": "10",
            "poster/events": str(sum(len(g.events) for g in groups)),
            "poster/groups": str(len(groups)),
            "poster/accounts": str(len({g.account for g in groups})),
        },
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
    claim, claimed = Claim.take(
        warehouse.engine(),
        lease=webhook_queue.lease,
        policy=webhook_queue.retry_policy(),
        limit=webhook_queue.claim_batch,
        now=datetime.now(UTC),
    )
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
