"""Account discovery: every active connected account becomes a partition of the entity assets."""

import dagster as dg

from poster_pipeline.orchestration.partitions import ACCOUNTS, accounts_partitions
from poster_pipeline.orchestration.resources import WarehouseResource


@dg.sensor(
    name="account_partitions",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition for each active account in the warehouse's accounts table "
    "(accounts connected by `poster-pipeline accounts add` or OAuth). Partitions of "
    "deactivated accounts are kept, with their history.",
)
def account_partitions_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    active = set(warehouse.accounts().active_names())
    known = set(context.instance.get_dynamic_partitions(ACCOUNTS))
    new = sorted(active - known)
    if not new:
        return dg.SkipReason(f"all {len(active)} active accounts have a partition")
    return dg.SensorResult(dynamic_partitions_requests=[accounts_partitions.build_add_request(new)])
