"""One Dagster asset per catalogue entity: Poster's objects of it, per account, in the warehouse.

A run of ``poster/<entity>`` for partition ``<account>`` is a *full sync* (the Materialize
button, smart sync, the schedule, the sync API): fetch the whole list and apply it, marking
deleted what Poster no longer lists (:func:`poster_pipeline.sync.run_full_sync` does the work;
this module maps its result to Dagster's events). Partial syncs from webhooks are recorded as
materializations of the same asset and partition by the drain run
(:mod:`poster_pipeline.orchestration.drain`), many partitions per run.

Two checks ride along: Poster listed each id once, and the mass-delete guard let the sync
through. Full-sync runs are tagged ``poster/sync=full``; only they reset the freshness clock.
"""

# No `from __future__ import annotations`: Dagster resolves the asset function's annotations
# (config and resources) at definition time.
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field, field_validator

from poster_pipeline.catalogue import ENTITIES, Entity, FieldType
from poster_pipeline.orchestration.automation import smart_sync_condition
from poster_pipeline.orchestration.partitions import accounts_partitions
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    sync_services,
)
from poster_pipeline.orchestration.tags import SYNC_TAG
from poster_pipeline.poster.records import PosterRecord
from poster_pipeline.sync import SyncFailed, run_full_sync
from poster_pipeline.sync.procedure import PREVIEW_ROWS
from poster_pipeline.warehouse.load import SyncReport
from poster_pipeline.warehouse.schema import entity_table
from poster_pipeline.warehouse.status import SyncKind

__all__ = [
    "SyncConfig",
    "entity_asset",
    "entity_asset_key",
    "entity_assets",
    "sync_metadata",
]

UNIQUE_KEYS = "unique_keys"
DELETION_GUARD = "deletion_guard"
DEFAULT_WINDOW = timedelta(hours=24)


class SyncConfig(dg.Config):
    """Run configuration of a full sync."""

    allow_mass_delete: bool = Field(
        default=False,
        description="Apply a full sync even if it marks more rows deleted than the mass-delete "
        "guard allows (use when the deletions in Poster are real).",
    )
    since: str | None = Field(
        default=None,
        description="Supplies only: read history from this date (YYYY-MM-DD) to today instead "
        "of the rolling window; rows are marked deleted only inside what was read.",
    )

    @field_validator("since")
    @classmethod
    def _a_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"since must be a date as YYYY-MM-DD, got {value!r}") from None
        return value


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


def _preview(spec: Entity, records: Sequence[PosterRecord]) -> str:
    """A Markdown table of the first records' scalar fields."""
    names = [f.name for f in spec.fields if f.type is not FieldType.JSON][:6]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for record in records[:PREVIEW_ROWS]:
        cells = ("" if record.values[n] is None else str(record.values[n]) for n in names)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def sync_metadata(spec: Entity, report: SyncReport, calls: int, retries: int) -> dict[str, Any]:
    """The metadata of a sync's materialization, full or partial."""
    return {
        "sync": report.kind.value,
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
    if config.since is not None and spec.window_field is None:
        raise dg.Failure(
            description=f"since applies to entities Poster lists by date (supplies), not to "
            f"{spec.name}; nothing was synced"
        )
    if context.run.tags.get(SYNC_TAG) != SyncKind.FULL:
        # Runs from the UI's Materialize button come without tags: say what this run is.
        context.instance.add_run_tags(context.run.run_id, {SYNC_TAG: SyncKind.FULL.value})
    try:
        result = run_full_sync(
            sync_services(poster_api, warehouse),
            spec,
            context.partition_key,
            guard=warehouse.deletion_guard(spec),
            allow_mass_delete=config.allow_mass_delete,
            run_id=context.run.run_id,
            since=None if config.since is None else date.fromisoformat(config.since),
            window_days=warehouse.supplies_window_days,
        )
    except SyncFailed as failed:
        if failed.refused is not None:
            yield dg.AssetCheckResult(
                asset_key=entity_asset_key(spec),
                check_name=DELETION_GUARD,
                passed=False,
                metadata={
                    "would_mark_deleted": failed.refused.to_delete,
                    "active": failed.refused.active,
                },
                description=str(failed),
            )
        raise dg.Failure(description=str(failed)) from None
    report = result.report
    context.log.info(
        f"full sync of {spec.name} for {report.account}: {report.fetched} fetched, "
        f"{report.inserted} inserted, {report.updated} updated, "
        f"{report.marked_deleted} marked deleted, {report.unchanged} unchanged"
    )
    yield dg.MaterializeResult(
        metadata={
            **sync_metadata(spec, report, result.api_calls, result.api_retries),
            "duration_s": round(result.duration_s, 3),
            "preview": dg.MetadataValue.md(_preview(spec, result.preview)),
        },
        check_results=_check_results(spec, report),
    )


def entity_asset(
    spec: Entity,
    smart_sync_window: timedelta = DEFAULT_WINDOW,
    *,
    warehouse: WarehouseResource | None = None,
) -> dg.AssetsDefinition:
    """The asset that keeps ``spec``'s table in step with Poster, one partition per account.

    Its freshness policy shows in the UI when any sync (full or partial) is older than the
    window; its automation condition (smart sync) asks for a full sync when the last *full*
    one in ``warehouse`` is. Without a ``warehouse`` (a run that only materializes: tests,
    the demo's one-off sync) the asset has no automation condition.
    """
    key = entity_asset_key(spec)
    deletion = (
        f"rows Poster flags with `{spec.delete_flag}` or no longer lists"
        if spec.delete_flag
        else "rows Poster no longer lists"
    )
    if spec.window_field:
        deletion += f" (dated inside the window a sync reads, by `{spec.window_field}`)"

    @dg.asset(
        key=key,
        group_name="poster",
        partitions_def=accounts_partitions,
        kinds={"poster", "sql"},
        description=f"{spec.description}\n\nFrom Poster `{spec.list_method}` into table "
        f"`{spec.table}`, keyed by (account, {', '.join(f'`{k}`' for k in spec.keys)}); "
        f"{deletion} are marked deleted, never dropped.",
        metadata={"table": spec.table, "dagster/column_schema": _column_schema(spec)},
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=smart_sync_window),
        automation_condition=None
        if warehouse is None
        else smart_sync_condition(spec.name, smart_sync_window, warehouse),
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
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        yield from _full_sync(context, spec, config, poster_api, warehouse)

    return _sync


def entity_assets(
    smart_sync_window: timedelta = DEFAULT_WINDOW, *, warehouse: WarehouseResource | None = None
) -> list[dg.AssetsDefinition]:
    """One asset per catalogue entity (see :func:`entity_asset`)."""
    return [entity_asset(spec, smart_sync_window, warehouse=warehouse) for spec in ENTITIES]
