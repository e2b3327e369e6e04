"""Sync requests from the sync API become full-sync runs, one per (account, entity).

``POST /api/poster/sync`` only stores ``pending`` rows in ``sync_requests`` (the receiver
cannot launch runs); this sensor reads them every few seconds, requests one full-sync run per
(account, entity) (several pending requests for one pair are merged into one run) and adds a
missing account partition.

A request is marked ``launched`` only once a run with its run key exists in the instance:
until then every tick requests the same run key again, which Dagster launches once. A daemon
that dies between a tick and the launch therefore loses nothing: the next tick asks again.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from poster_pipeline.catalogue import ENTITIES, entity
from poster_pipeline.orchestration.assets import entity_asset_key
from poster_pipeline.orchestration.partitions import ACCOUNTS, accounts_partitions
from poster_pipeline.orchestration.resources import WarehouseResource
from poster_pipeline.orchestration.tags import RUN_KEY_TAG, SYNC_TAG
from poster_pipeline.warehouse.status import SyncKind
from poster_pipeline.warehouse.sync_requests import SyncRequest, mark_launched, pending_requests

#: Requests read per tick; more wait for the next tick, a few seconds later.
BATCH = 500
REQUESTED_BY_TAG = "poster/requested_by"
_ENTITY_NAMES = frozenset(spec.name for spec in ENTITIES)


def run_key(request: SyncRequest) -> str:
    """The run key of the run that serves ``request`` (and any merged into it).

    The request time is part of it: Dagster skips a run key it has seen before, and ids start
    again from 1 when the warehouse is recreated while the Dagster instance lives on.
    """
    moment = request.requested_at.astimezone(UTC)
    return f"sync-request:{request.id}:{moment:%Y%m%dT%H%M%S.%fZ}"


def group_requests(
    requests: Sequence[SyncRequest],
) -> dict[tuple[str, str], list[SyncRequest]]:
    """Pending requests per (account, entity), in the order of each pair's oldest request."""
    groups: dict[tuple[str, str], list[SyncRequest]] = {}
    for request in sorted(requests, key=lambda r: r.id):
        groups.setdefault((request.account, request.entity), []).append(request)
    return groups


def full_sync_request(group: Sequence[SyncRequest]) -> dg.RunRequest:
    """The full-sync run of one (account, entity), keyed by its oldest request."""
    first = group[0]
    return dg.RunRequest(
        run_key=run_key(first),
        partition_key=first.account,
        asset_selection=[entity_asset_key(entity(first.entity))],
        tags={SYNC_TAG: SyncKind.FULL.value, REQUESTED_BY_TAG: first.requested_by},
    )


@dg.sensor(
    name="sync_requests",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.groups("poster"),
    description="Launches the full syncs asked for through the sync API (POST "
    "/api/poster/sync): one run per account and entity, from the warehouse's sync_requests "
    "table.",
)
def sync_requests_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    engine = warehouse.engine()
    pending = pending_requests(engine, limit=BATCH)
    if not pending:
        return dg.SkipReason("no sync request is pending")
    stale = [r for r in pending if r.entity not in _ENTITY_NAMES]
    for request in stale:  # the catalogue lost the entity since the request was made
        context.log.warning(
            f"sync request {request.id}: unknown entity {request.entity!r}, dropped"
        )
    groups = group_requests([r for r in pending if r.entity in _ENTITY_NAMES])
    by_key = {run_key(group[0]): group for group in groups.values()}
    existing = _launched_run_keys(context.instance, list(by_key))
    keys: dict[int, str | None] = {r.id: None for r in stale}
    for key in existing:
        keys.update({request.id: key for request in by_key[key]})
    if keys:
        mark_launched(engine, keys, now=datetime.now(UTC))
    to_launch = [group for key, group in by_key.items() if key not in existing]

    known = set(context.instance.get_dynamic_partitions(ACCOUNTS))
    new_accounts = sorted({group[0].account for group in to_launch} - known)
    context.log.info(f"{len(pending)} pending sync requests → {len(to_launch)} full syncs")
    return dg.SensorResult(
        run_requests=[full_sync_request(group) for group in to_launch],
        dynamic_partitions_requests=(
            [accounts_partitions.build_add_request(new_accounts)] if new_accounts else []
        ),
    )


def _launched_run_keys(instance: dg.DagsterInstance, keys: Sequence[str]) -> set[str]:
    """The run keys among ``keys`` that already have a run in the instance."""
    if not keys:
        return set()
    records = instance.get_run_records(filters=dg.RunsFilter(tags={RUN_KEY_TAG: list(keys)}))
    return {record.dagster_run.tags[RUN_KEY_TAG] for record in records} & set(keys)
