"""One Dagster asset per catalogue entity: Poster's objects of it, per account, in the warehouse.

A materialization of ``poster/<entity>`` for partition ``<account>`` is either

- a *full sync* (the default: the Materialize button, automation, the schedule): fetch the
  whole list and apply it, marking deleted what Poster no longer lists; or
- a *partial sync* (run config ``object_ids``, launched by the webhook sensor): re-fetch only
  the named objects and settle the queue events that named them, in the same transaction.

Two checks ride along: Poster listed each id once, and the mass-delete guard let the sync
through. Only full syncs are tagged ``poster/sync=full`` and reset the freshness clock.
"""

# No `from __future__ import annotations`: Dagster resolves the asset function's annotations
# (config and resources) at definition time.
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg
import sqlalchemy as sa
from pydantic import Field

from poster_pipeline.catalogue import ENTITIES, Entity, FieldType
from poster_pipeline.orchestration.automation import smart_sync_condition
from poster_pipeline.orchestration.partitions import accounts_partitions
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.poster.errors import PosterError
from poster_pipeline.poster.fetch import fetch_objects
from poster_pipeline.poster.records import PosterRecord
from poster_pipeline.warehouse.accounts import AccountError
from poster_pipeline.warehouse.guard import MassDeleteRefused
from poster_pipeline.warehouse.load import SyncReport, full_sync, partial_sync, record_failure
from poster_pipeline.warehouse.queue import release_failed, renew_claim, settle_done
from poster_pipeline.warehouse.schema import entity_table

__all__ = ["SYNC_TAG", "SyncConfig", "entity_asset", "entity_asset_key", "entity_assets"]

SYNC_TAG = "poster/sync"  # run tag: "full" or "partial"
UNIQUE_KEYS = "unique_keys"
DELETION_GUARD = "deletion_guard"
PREVIEW_ROWS = 5
LISTED_IDS = 50
DEFAULT_WINDOW = timedelta(hours=24)

# Failures a sync reports cleanly (their text is safe: no token, no secret).
_EXPECTED_FAILURES = (PosterError, AccountError, sa.exc.SQLAlchemyError, psycopg.Error)


class SyncConfig(dg.Config):
    """Run configuration of an entity sync; empty for a full sync."""

    allow_mass_delete: bool = Field(
        default=False,
        description="Apply a full sync even if it marks more rows deleted than the mass-delete "
        "guard allows (use when the deletions in Poster are real).",
    )
    object_ids: list[int] = Field(
        default=[], description="Partial sync: re-fetch only these Poster ids."
    )
    event_ids: list[int] = Field(
        default=[], description="Partial sync: the webhook_events rows this run settles."
    )
    claim_id: str | None = Field(default=None, description="Partial sync: the queue claim.")


def entity_asset_key(spec: Entity) -> dg.AssetKey:
    return dg.AssetKey(["poster", spec.name])


def _column_schema(spec: Entity) -> dg.TableSchema:
    table = entity_table(spec)
    descriptions = {f.name: f.description for f in spec.fields}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type.compile(dialect=sa.dialects.postgresql.dialect())),
                description=descriptions.get(column.name) or column.comment,
                constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
            )
            for column in table.columns
        ]
    )


def _keeping_first(
    records: Iterable[PosterRecord], first: list[PosterRecord]
) -> Iterator[PosterRecord]:
    """``records``, passed on, the first :data:`PREVIEW_ROWS` of them also kept in ``first``."""
    for record in records:
        if len(first) < PREVIEW_ROWS:
            first.append(record)
        yield record


def _preview(spec: Entity, records: Sequence[PosterRecord]) -> str:
    """A Markdown table of the first records' scalar fields."""
    names = [f.name for f in spec.fields if f.type is not FieldType.JSON][:6]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for record in records[:PREVIEW_ROWS]:
        cells = ("" if record.values[n] is None else str(record.values[n]) for n in names)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _metadata(spec: Entity, report: SyncReport, calls: int, retries: int) -> dict[str, Any]:
    return {
        "sync": report.kind,
        "account": report.account,
        "table": spec.table,
        "rows_fetched": report.fetched,
        "rows_inserted": report.inserted,
        "rows_updated": report.updated,
        "rows_marked_deleted": report.marked_deleted,
        "rows_restored": report.restored,
        "rows_unchanged": report.unchanged,
        "rows_total": report.rows_total,
        "dagster/row_count": report.active_total,
        "api_calls": calls,
        "api_retries": retries,
    }


def _check_results(spec: Entity, report: SyncReport) -> list[dg.AssetCheckResult]:
    key = entity_asset_key(spec)
    return [
        dg.AssetCheckResult(
            asset_key=key,
            check_name=UNIQUE_KEYS,
            passed=report.duplicates == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"duplicate_ids": report.duplicates},
            description="Poster listed every id once (duplicates: the last occurrence is kept).",
        ),
        dg.AssetCheckResult(
            asset_key=key,
            check_name=DELETION_GUARD,
            passed=True,
            metadata={
                "marked_deleted": report.marked_deleted,
                "active_before": report.active_before,
                "overridden": report.guard_overridden,
            },
        ),
    ]


def _full_sync(
    context: dg.AssetExecutionContext,
    spec: Entity,
    config: SyncConfig,
    poster_api: PosterApiResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    account, now, started = context.partition_key, datetime.now(UTC), time.perf_counter()
    first: list[PosterRecord] = []
    try:
        with (
            poster_api.client(warehouse.accounts().token(account), account) as client,
            # Streamed from the answer into the warehouse, so the list is never held whole;
            # closed on every exit, so a failed load does not keep the answer's socket.
            closing(client.iter_list(spec)) as listed,
        ):
            report = full_sync(
                warehouse.engine(),
                spec,
                account,
                _keeping_first(listed, first),
                now=now,
                guard=warehouse.deletion_guard(),
                allow_mass_delete=config.allow_mass_delete,
                run_id=context.run.run_id,
            )
    except MassDeleteRefused as refused:
        _record_failure(context, warehouse, spec, str(refused), now)
        yield dg.AssetCheckResult(
            asset_key=entity_asset_key(spec),
            check_name=DELETION_GUARD,
            passed=False,
            metadata={"would_mark_deleted": refused.to_delete, "active": refused.active},
            description=str(refused),
        )
        raise dg.Failure(description=str(refused)) from None
    except _EXPECTED_FAILURES as exc:
        message = f"{spec.name} sync of account {account} failed: {exc}"
        _record_failure(context, warehouse, spec, message, now)
        raise dg.Failure(description=message) from None
    except Exception as exc:
        # Unexpected (a bad POSTER_TOKEN_KEY, a bug): recorded by type only, since its text
        # is not known to be free of secrets, so smart sync backs off instead of retrying
        # every minute; Dagster shows the traceback.
        _record_failure(context, warehouse, spec, f"unexpected {type(exc).__name__}", now)
        raise
    context.log.info(
        f"full sync of {spec.name} for {account}: {report.fetched} fetched, "
        f"{report.inserted} inserted, {report.updated} updated, "
        f"{report.marked_deleted} marked deleted, {report.unchanged} unchanged"
    )
    yield dg.MaterializeResult(
        metadata={
            **_metadata(spec, report, client.stats.total, client.stats.retries),
            "duration_s": round(time.perf_counter() - started, 3),
            "preview": dg.MetadataValue.md(_preview(spec, first)),
        },
        check_results=_check_results(spec, report),
    )


def _partial_sync(
    context: dg.AssetExecutionContext,
    spec: Entity,
    config: SyncConfig,
    poster_api: PosterApiResource,
    warehouse: WarehouseResource,
    webhook_queue: WebhookQueueResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    account, now, started = context.partition_key, datetime.now(UTC), time.perf_counter()
    engine, run_id = warehouse.engine(), context.run.run_id

    def settle(conn: sa.Connection) -> int:
        if config.claim_id is None:
            return 0
        return settle_done(conn, config.event_ids, claim_id=config.claim_id, run_id=run_id, now=now)

    if config.claim_id is not None:
        # The wait in the run queue used part of the lease: renew it for the sync itself.
        renew_claim(engine, config.claim_id, now=now, lease=webhook_queue.lease)
    try:
        with poster_api.client(warehouse.accounts().token(account), account) as client:
            fetched = fetch_objects(
                client, spec, config.object_ids, single_fetch_limit=webhook_queue.single_fetch_limit
            )
        report = partial_sync(
            engine,
            spec,
            account,
            fetched.records,
            missing=fetched.missing,
            now=now,
            run_id=run_id,
            in_transaction=settle,
        )
    except _EXPECTED_FAILURES as exc:
        message = f"partial sync of {spec.name} for account {account} failed: {exc}"
        _record_failure(context, warehouse, spec, message, now, kind="partial")
        if config.claim_id is not None:
            retried, dead = release_failed(
                engine,
                config.event_ids,
                claim_id=config.claim_id,
                error=message,
                now=now,
                policy=webhook_queue.retry_policy(),
            )
            message += f" ({retried} events will be retried, {dead} are dead)"
        raise dg.Failure(description=message) from None
    ids = sorted(config.object_ids)
    context.log.info(
        f"partial sync of {spec.name} for {account}: {len(ids)} objects by {fetched.strategy}, "
        f"{report.changed} rows changed, {report.settled_events} events settled"
    )
    yield dg.MaterializeResult(
        metadata={
            **_metadata(spec, report, client.stats.total, client.stats.retries),
            "object_ids": ", ".join(map(str, ids[:LISTED_IDS]))
            + (f" … ({len(ids)} in all)" if len(ids) > LISTED_IDS else ""),
            "objects_requested": len(ids),
            "objects_missing": len(fetched.missing),
            "fetch_strategy": fetched.strategy,
            "events_settled": report.settled_events,
            "duration_s": round(time.perf_counter() - started, 3),
        },
        check_results=_check_results(spec, report),
    )


def _record_failure(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    spec: Entity,
    message: str,
    now: datetime,
    kind: str = "full",
) -> None:
    try:
        record_failure(
            warehouse.engine(),
            spec.name,
            context.partition_key,
            message,
            now=now,
            kind=kind,
            run_id=context.run.run_id,
        )
    except _EXPECTED_FAILURES as exc:  # the warehouse itself may be what failed
        context.log.warning(f"could not record the failure in sync_status: {exc}")


def entity_asset(
    spec: Entity, smart_sync_window: timedelta = DEFAULT_WINDOW
) -> dg.AssetsDefinition:
    """The asset that keeps ``spec``'s table in step with Poster, one partition per account.

    Its freshness policy shows in the UI when any sync (full or partial) is older than the
    window; its automation condition (smart sync) asks for a full sync when the last *full*
    one is.
    """
    key = entity_asset_key(spec)
    deletion = (
        f"rows Poster flags with `{spec.delete_flag}` or no longer lists"
        if spec.delete_flag
        else "rows Poster no longer lists"
    )

    @dg.asset(
        key=key,
        group_name="poster",
        partitions_def=accounts_partitions,
        kinds={"poster", "sql"},
        description=f"{spec.description}\n\nFrom Poster `{spec.list_method}` into table "
        f"`{spec.table}`, keyed by (account, `{spec.key}`); {deletion} are marked deleted, "
        "never dropped.",
        metadata={"table": spec.table, "dagster/column_schema": _column_schema(spec)},
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=smart_sync_window),
        automation_condition=smart_sync_condition(spec.name, smart_sync_window),
        check_specs=[
            dg.AssetCheckSpec(UNIQUE_KEYS, asset=key, description="Poster listed each id once."),
            dg.AssetCheckSpec(
                DELETION_GUARD,
                asset=key,
                description="The sync did not mark an implausible share of rows deleted.",
            ),
        ],
    )
    def _sync(
        context: dg.AssetExecutionContext,
        config: SyncConfig,
        poster_api: PosterApiResource,
        warehouse: WarehouseResource,
        webhook_queue: WebhookQueueResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        if config.object_ids:
            yield from _partial_sync(context, spec, config, poster_api, warehouse, webhook_queue)
        else:
            yield from _full_sync(context, spec, config, poster_api, warehouse)

    return _sync


def entity_assets(smart_sync_window: timedelta = DEFAULT_WINDOW) -> list[dg.AssetsDefinition]:
    return [entity_asset(spec, smart_sync_window) for spec in ENTITIES]
