"""One Dagster asset per catalogue entity: Poster's list of it, per account, in the warehouse.

A materialization of ``poster/<entity>`` for partition ``<account>`` is a *full sync*: fetch the
whole list, apply it in one transaction (see :mod:`poster_pipeline.warehouse.load`), and report
what changed. Two checks ride along: Poster listed each id once, and the mass-delete guard let
the sync through.
"""

# No `from __future__ import annotations`: Dagster resolves the asset function's annotations
# (config and resources) at definition time.
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import psycopg
import sqlalchemy as sa
from pydantic import Field

from poster_pipeline.catalogue import ENTITIES, Entity, FieldType
from poster_pipeline.orchestration.partitions import accounts_partitions
from poster_pipeline.orchestration.resources import PosterApiResource, WarehouseResource
from poster_pipeline.poster.errors import PosterError
from poster_pipeline.poster.records import PosterRecord
from poster_pipeline.warehouse.accounts import AccountError
from poster_pipeline.warehouse.guard import MassDeleteRefused
from poster_pipeline.warehouse.load import FullSyncReport, full_sync, record_failure
from poster_pipeline.warehouse.schema import entity_table

__all__ = ["SYNC_TAG", "SyncConfig", "entity_asset", "entity_asset_key", "entity_assets"]

SYNC_TAG = "poster/sync"  # run tag: "full" or "partial"
UNIQUE_KEYS = "unique_keys"
DELETION_GUARD = "deletion_guard"
PREVIEW_ROWS = 5

# Failures a sync reports cleanly (the error text is safe: no token, no secret).
_EXPECTED_FAILURES = (PosterError, AccountError, sa.exc.SQLAlchemyError, psycopg.Error)


class SyncConfig(dg.Config):
    """Run configuration of an entity sync."""

    allow_mass_delete: bool = Field(
        default=False,
        description="Apply the sync even if it marks more rows deleted than the mass-delete "
        "guard allows (use when the deletions in Poster are real).",
    )


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


def _metadata(
    spec: Entity,
    report: FullSyncReport,
    records: Sequence[PosterRecord],
    calls: int,
    retries: int,
    seconds: float,
) -> dict[str, Any]:
    return {
        "sync": "full",
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
        "duration_s": round(seconds, 3),
        "preview": dg.MetadataValue.md(_preview(spec, records)),
    }


def _check_results(spec: Entity, report: FullSyncReport) -> list[dg.AssetCheckResult]:
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


def entity_asset(spec: Entity) -> dg.AssetsDefinition:
    """The asset that keeps ``spec``'s table in step with Poster, one partition per account."""
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
        account = context.partition_key
        started = time.perf_counter()
        now = datetime.now(UTC)
        engine = warehouse.engine()
        try:
            token = warehouse.accounts().token(account)
            with poster_api.client(token, account) as client:
                records = client.fetch_list(spec)
                calls, retries = client.stats.total, client.stats.retries
            report = full_sync(
                engine,
                spec,
                account,
                records,
                now=now,
                guard=warehouse.deletion_guard(),
                allow_mass_delete=config.allow_mass_delete,
                run_id=context.run.run_id,
            )
        except MassDeleteRefused as refused:
            _record_failure(context, warehouse, spec, account, str(refused), now)
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=DELETION_GUARD,
                passed=False,
                metadata={"would_mark_deleted": refused.to_delete, "active": refused.active},
                description=str(refused),
            )
            raise dg.Failure(description=str(refused)) from None
        except _EXPECTED_FAILURES as exc:
            message = f"{spec.name} sync of account {account} failed: {exc}"
            _record_failure(context, warehouse, spec, account, message, now)
            raise dg.Failure(description=message) from None
        context.log.info(
            "%s of %s: %d fetched, %d inserted, %d updated, %d marked deleted, %d unchanged",
            spec.name,
            account,
            report.fetched,
            report.inserted,
            report.updated,
            report.marked_deleted,
            report.unchanged,
        )
        yield dg.MaterializeResult(
            metadata=_metadata(
                spec, report, records, calls, retries, time.perf_counter() - started
            ),
            check_results=_check_results(spec, report),
        )

    return _sync


def _record_failure(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    spec: Entity,
    account: str,
    message: str,
    now: datetime,
) -> None:
    try:
        record_failure(
            warehouse.engine(), spec.name, account, message, now=now, run_id=context.run.run_id
        )
    except _EXPECTED_FAILURES as exc:  # the warehouse itself may be what failed
        context.log.warning("could not record the failure in sync_status: %s", exc)


def entity_assets() -> list[dg.AssetsDefinition]:
    return [entity_asset(spec) for spec in ENTITIES]
