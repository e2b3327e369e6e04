"""The ``webhook_drain`` job: one run applies every (account, entity) group of queue claims.

The ``webhook_queue`` sensor claims due events and launches a run of this job; the run applies
that claim's groups and keeps claiming newly due events for a while (``drain_take_for_s``), so
the number of run processes is bounded by time, not by restaurants × entities (docs/drain.md
has the figures). The run records each group as what it is for the user: a
materialization of ``poster/<entity>`` for partition ``<account>``, with the same metadata a
partial sync always had, and an evaluation of that partition's ``webhook_events_applied``
check. A group that failed fails the check for its partition, is logged, is recorded in
``sync_status``, and fails the run at the end (after every other group was applied), so the
run-failure alert fires.
"""

# No `from __future__ import annotations`: Dagster reads the op's annotations.
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from poster_pipeline.alerts.run_failure import FAILED_SYNCS
from poster_pipeline.catalogue import ENTITIES, Entity, entity
from poster_pipeline.orchestration.assets import entity_asset_key, sync_metadata
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
    sync_services,
)
from poster_pipeline.orchestration.tags import SYNC_TAG
from poster_pipeline.sync import PartialSyncResult, drain
from poster_pipeline.warehouse.queue import unapplied_events
from poster_pipeline.warehouse.status import SyncKind

__all__ = [
    "DRAIN_OP",
    "EVENTS_APPLIED",
    "DrainConfig",
    "events_applied_checks",
    "webhook_drain_job",
]

DRAIN_OP = "drain_webhooks"
EVENTS_APPLIED = "webhook_events_applied"
LISTED_IDS = 50


class DrainConfig(dg.Config):
    """Run configuration of a drain run: the claim whose events it applies."""

    claim_id: str = Field(description="The webhook_events claim taken by the sensor.")


def _listed(ids: tuple[int, ...]) -> str:
    shown = ", ".join(map(str, ids[:LISTED_IDS]))
    return shown + (f" … ({len(ids)} in all)" if len(ids) > LISTED_IDS else "")


def _materialization(spec: Entity, result: PartialSyncResult) -> dg.AssetMaterialization:
    assert result.report is not None
    return dg.AssetMaterialization(
        asset_key=entity_asset_key(spec),
        partition=result.account,
        description=f"partial sync of {len(result.object_ids)} objects from webhooks",
        metadata={
            **sync_metadata(spec, result.report, result.api_calls, result.api_retries),
            "object_ids": _listed(result.object_ids),
            "objects_requested": len(result.object_ids),
            "objects_missing": len(result.missing),
            "objects_failed": len(result.failed),
            "fetch_strategy": result.strategy.value if result.strategy else "",
            "events_settled": result.settled,
            "duration_s": round(result.duration_s, 3),
        },
        tags={SYNC_TAG: SyncKind.PARTIAL.value},
    )


def _check(spec: Entity, result: PartialSyncResult) -> dg.AssetCheckEvaluation:
    failed = tuple(sorted(result.failed))
    return dg.AssetCheckEvaluation(
        asset_key=entity_asset_key(spec),
        check_name=EVENTS_APPLIED,
        partition=result.account,
        passed=result.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.problem,
        metadata={
            "objects_failed": _listed(failed),
            "events_retried": result.retried,
            "events_dead": result.dead,
        },
    )


@dg.op(
    name=DRAIN_OP,
    out={},
    description="Applies every (account, entity) group of the sensor's webhook-queue claim and "
    "of the claims it takes while it runs: re-fetches the named objects, loads them, settles "
    "their events.",
)
def drain_webhooks(
    context: dg.OpExecutionContext,
    config: DrainConfig,
    poster_api: PosterApiResource,
    warehouse: WarehouseResource,
    webhook_queue: WebhookQueueResource,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation]:
    """Yields each group's events as it finishes: yielded events are written at once, while
    ``context.log_event`` would hold them until the op returns and lose them if it fails."""
    engine = warehouse.engine()
    claim = webhook_queue.claim(engine, config.claim_id)
    claim.renew(datetime.now(UTC))  # the wait in the run queue used part of the lease
    claimed = claim.events()
    context.log.info(
        f"claim {claim.id}: {len(claimed)} events; taking newly due events for up to "
        f"{webhook_queue.drain_take_for_s:g} s"
    )
    failures: list[PartialSyncResult] = []
    # (entity, account) → whether the check passed, as this run last recorded it. A pass is
    # recorded once per run and after a failure: each evaluation costs an event-log write
    # (10–20 ms here), the drain's bottleneck under many restaurants.
    evaluated: dict[tuple[str, str], bool] = {}
    totals = {"groups": 0, "settled": 0, "retried": 0, "dead": 0, "deferred": 0}
    for result in drain(
        sync_services(poster_api, warehouse),
        claim,
        claimed,
        run_id=context.run.run_id,
        limits=webhook_queue.drain_limits(),
        take=lambda: webhook_queue.take(engine),
    ):
        spec = entity(result.entity)
        totals["groups"] += 1
        for name in ("settled", "retried", "dead", "deferred"):
            totals[name] += getattr(result, name)
        if result.report is not None:
            yield _materialization(spec, result)
        if result.deferred and result.report is None:
            context.log.info(
                f"{result.entity} for {result.account}: another sync held the lock, "
                f"{result.deferred} events deferred"
            )
            continue
        if not result.ok or not evaluated.get((result.entity, result.account), False):
            evaluated[(result.entity, result.account)] = result.ok
            yield _check(spec, result)
        if result.problem is not None:
            context.log.error(result.problem)
            failures.append(result)
    context.log.info(
        f"{totals['groups']} groups: {totals['settled']} events settled, {totals['retried']} to "
        f"retry, {totals['dead']} dead, {totals['deferred']} deferred"
    )
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} of {totals['groups']} partial syncs failed (the others "
            "were applied):\n" + "\n".join(str(f.problem) for f in failures[:20]),
            metadata={
                # Read by the run-failure alert: one alert per asset and partition.
                FAILED_SYNCS: [
                    {
                        "asset": entity_asset_key(entity(f.entity)).to_user_string(),
                        "partition": f.account,
                        "error": f.problem,
                    }
                    for f in failures
                ],
                **totals,
            },
        )


@dg.job(
    name="webhook_drain",
    tags={SYNC_TAG: SyncKind.PARTIAL.value},
    description="Partial syncs from webhooks: every (account, entity) group of one claim of "
    "the webhook_events queue, in one run. Launched by the webhook_queue sensor.",
)
def webhook_drain_job() -> None:
    drain_webhooks()


def _events_applied_check(spec: Entity) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=entity_asset_key(spec),
        name=EVENTS_APPLIED,
        description="Every webhook event was applied: none is dead or waiting for a retry after "
        "a failure. The webhook drain records it per partition with each partial sync; "
        "executing it reads the queue for every account.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.engine().connect() as conn:
            rows = unapplied_events(conn, spec.name)
        return dg.AssetCheckResult(
            passed=not rows,
            metadata={
                "events_dead": sum(r.dead for r in rows),
                "events_retrying": sum(r.retrying for r in rows),
                "accounts": ", ".join(r.account for r in rows[:LISTED_IDS]),
            },
        )

    return _check


def events_applied_checks() -> list[dg.AssetChecksDefinition]:
    return [_events_applied_check(spec) for spec in ENTITIES]
