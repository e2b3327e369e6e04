"""Benchmark 1: full-sync throughput of the ingredients asset, against the limit of the machine.

For each catalogue size (100,000 and 10,000 ingredients; smoke: 2,000) an emulator process
serves the list, and each measurement runs in a fresh Python process of its own, so its peak
RSS (``VmHWM`` of ``/proc/self/status``: the whole process, interpreter and imports included)
is that measurement's alone and the emulator's memory is not counted:

- ``direct-first`` / ``direct-resync``: the asset's work, timed without Dagster: the client's
  ``iter_list`` (HTTP, JSON parsed as a stream, typing each record) streamed into
  ``full_sync`` (COPY into a stage table, plan, upsert, mark vanished, one transaction), into
  an empty table and then again with nothing changed; the time spent reading and typing the
  list is clocked apart from the rest;
- ``asset-first`` / ``asset-resync``: the same through ``dg.materialize`` of the asset in
  process (an ephemeral instance, the project's resources): Dagster's own overhead added;
- ``limit``: the same JSON fetched with ``requests``, parsed with ``json``, and COPYed with
  psycopg into an UNLOGGED table without constraints, nothing else: what the machine allows.

Each of the N repetitions runs these in turn, so noise from other sessions hits them alike;
the figures are medians. The unchanged re-sync must write no row: its ``SyncReport`` says so,
and so do the table's ``pg_stat_user_tables`` counters (inserted, updated, deleted tuples).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from benchmarks.figures import (
    BenchmarkBroken,
    Figure,
    at_most,
    common_arguments,
    median,
    print_figures,
    write_figures,
)

if TYPE_CHECKING:
    from benchmarks.stack import Warehouse

# The worker processes import only what they measure (not the emulator, pytest or the stack
# helpers), so that their peak RSS is the sync's.


@dataclass(frozen=True)
class Target:
    """What a measurement talks to: the emulator's API, the warehouse, the account."""

    api_url: str
    database_url: str
    token_key: str
    account: str
    token: str

    def argv(self) -> list[str]:
        return [
            f"--{name.replace('_', '-')}={getattr(self, name)}"
            for name in self.__dataclass_fields__
        ]


NAME = "full sync"
ENTITY = "ingredients"
SIZES = (100_000, 10_000)
SMOKE_SIZES = (2_000,)
RATIO_TARGET = 2.0
MEMORY_TARGET_MB = 300.0
LIMIT_TABLE = "bench_limit_ingredients"
MODES = ("direct-first", "direct-resync", "limit", "asset-first", "asset-resync")


# -- the measurements, each in a process of its own -------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``). Not ``getrusage``'s ``ru_maxrss``:
    Linux carries that over ``execve`` from the forking parent, so a small child would report
    at least the orchestrating process's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise BenchmarkBroken("no VmHWM in /proc/self/status (Linux only)")


def _measure_direct(target: Target) -> dict[str, Any]:
    """``iter_list`` streamed into ``full_sync``, as the asset's ``_full_sync`` does."""
    from poster_pipeline.catalogue import entity
    from poster_pipeline.poster.client import ClientSettings, PosterClient
    from poster_pipeline.warehouse.engine import create_warehouse_engine
    from poster_pipeline.warehouse.load import full_sync

    spec, engine = entity(ENTITY), create_warehouse_engine(target.database_url)
    with engine.connect():  # open the pooled connection before the clock starts
        pass
    baseline = _peak_rss_mb()
    started = time.perf_counter()
    settings = ClientSettings(base_url=target.api_url, requests_per_second=1000)
    with PosterClient(target.token, settings=settings) as client:
        records = _Clocked(client.iter_list(spec))
        report = full_sync(engine, spec, target.account, records, now=datetime.now(UTC))
    ended = time.perf_counter()
    engine.dispose()
    return {
        "seconds": ended - started,
        "fetch_seconds": records.seconds,
        "load_seconds": ended - started - records.seconds,
        "rows": report.fetched,
        "written": report.inserted + report.updated + report.marked_deleted,
        "baseline_mb": baseline,
        "peak_mb": _peak_rss_mb(),
    }


class _Clocked:
    """An iterator that adds up the time spent producing its items (reading and typing)."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self.seconds = 0.0

    def __iter__(self) -> _Clocked:
        return self

    def __next__(self) -> Any:
        started = time.perf_counter()
        try:
            return next(self._items)
        finally:
            self.seconds += time.perf_counter() - started


def _measure_limit(target: Target) -> dict[str, Any]:
    """The same JSON, fetched, parsed and COPYed into an UNLOGGED table: nothing else."""
    import psycopg
    import requests

    from poster_pipeline.catalogue import FieldType, entity

    spec = entity(ENTITY)
    json_fields = {f.name for f in spec.fields if f.type is FieldType.JSON}
    columns = [*spec.field_names, "raw"]
    url = target.database_url.replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {LIMIT_TABLE}")
        conn.execute(f"CREATE UNLOGGED TABLE {LIMIT_TABLE} AS SELECT * FROM {ENTITY} WITH NO DATA")
        conn.commit()
        baseline = _peak_rss_mb()
        started = time.perf_counter()
        answer = requests.get(
            f"{target.api_url}/{spec.list_method}", params={"token": target.token}, timeout=60
        )
        objects = json.loads(answer.content)["response"]
        statement = f"COPY {LIMIT_TABLE} ({', '.join(columns)}) FROM STDIN"
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for raw in objects:
                row = [
                    json.dumps(raw.get(f)) if f in json_fields else raw.get(f)
                    for f in spec.field_names
                ]
                row.append(json.dumps(raw, ensure_ascii=False))
                copy.write_row(row)
        conn.commit()
        ended = time.perf_counter()
        conn.execute(f"DROP TABLE {LIMIT_TABLE}")
    return {
        "seconds": ended - started,
        "rows": len(objects),
        "baseline_mb": baseline,
        "peak_mb": _peak_rss_mb(),
    }


def _measure_asset(target: Target) -> dict[str, Any]:
    """``dg.materialize`` of the ingredients asset for the account, in this process."""
    import dagster as dg

    from poster_pipeline.catalogue import entity
    from poster_pipeline.orchestration.assets import entity_asset
    from poster_pipeline.orchestration.partitions import ACCOUNTS
    from poster_pipeline.orchestration.resources import (
        PosterApiResource,
        WarehouseResource,
        WebhookQueueResource,
    )

    asset = entity_asset(entity(ENTITY))
    with tempfile.TemporaryDirectory() as data_dir:
        resources = {
            "poster_api": PosterApiResource(base_url=target.api_url),
            "warehouse": WarehouseResource(
                database_url=target.database_url, data_dir=data_dir, token_key=target.token_key
            ),
            "webhook_queue": WebhookQueueResource(),
        }
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(ACCOUNTS, [target.account])
        baseline = _peak_rss_mb()
        started = time.perf_counter()
        result = dg.materialize(
            [asset], partition_key=target.account, instance=instance, resources=resources
        )
        ended = time.perf_counter()
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    written = sum(
        int(metadata[k]) for k in ("rows_inserted", "rows_updated", "rows_marked_deleted")
    )
    return {
        "seconds": ended - started,
        "asset_seconds": float(metadata["duration_s"]),
        "rows": int(metadata["rows_fetched"]),
        "written": written,
        "baseline_mb": baseline,
        "peak_mb": _peak_rss_mb(),
    }


def worker(mode: str, target: Target) -> dict[str, Any]:
    if mode.startswith("direct"):
        return _measure_direct(target)
    if mode.startswith("asset"):
        return _measure_asset(target)
    return _measure_limit(target)


def run_worker(mode: str, target: Target) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its last output line is the JSON result."""
    argv = [sys.executable, "-m", "benchmarks.full_sync", "--worker", mode, *target.argv()]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchmarkBroken(f"{mode} measurement failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the warehouse side ----------------------------------------------------------------------


def empty_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {ENTITY}"))
        conn.execute(sa.text("DELETE FROM sync_status"))


def tuple_counters(engine: sa.Engine) -> dict[str, int]:
    """Inserted + updated + deleted tuples of each table, as PostgreSQL's statistics count."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        rows = conn.execute(
            sa.text(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
                "WHERE relname IN (:entity, 'sync_status')"
            ),
            {"entity": ENTITY},
        ).all()
    return {name: int(count) for name, count in rows}


def rows_written_by_stats(engine: sa.Engine, before: dict[str, int]) -> int:
    """Tuples the last sync wrote into the entity table, by ``pg_stat_user_tables``.

    A backend reports its counters when its connection closes; the sync always writes its
    ``sync_status`` row, so once that table's counter moved the entity table's is current.
    """
    deadline = time.monotonic() + 15
    while True:
        after = tuple_counters(engine)
        if after.get("sync_status", 0) > before.get("sync_status", 0):
            return after.get(ENTITY, 0) - before.get(ENTITY, 0)
        if time.monotonic() > deadline:
            raise BenchmarkBroken("PostgreSQL's statistics did not show the sync within 15 s")
        time.sleep(0.2)


# -- one catalogue size ----------------------------------------------------------------------


def measure_size(
    size: int, repetitions: int, warehouse: Warehouse, logs: Path
) -> dict[str, list[dict[str, Any]]]:
    """Every mode ``repetitions`` times, interleaved, against one emulator of ``size``."""
    from benchmarks.stack import ACCOUNT, running, start_emulator

    engine = warehouse.engine()
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    results["resync_stats_written"] = []
    with running([]) as processes:
        emulator = start_emulator(logs, sizes={ENTITY: size})
        processes.append(emulator.process)
        target = Target(
            emulator.api_url, warehouse.url, warehouse.token_key, ACCOUNT.name, ACCOUNT.token
        )
        run_worker("limit", target)  # warm the emulator's answer cache
        for _ in range(repetitions):
            for prefix in ("direct", "asset"):
                empty_table(engine)
                results[f"{prefix}-first"].append(run_worker(f"{prefix}-first", target))
                before = tuple_counters(engine)
                results[f"{prefix}-resync"].append(run_worker(f"{prefix}-resync", target))
                results["resync_stats_written"].append(
                    {"written": rows_written_by_stats(engine, before)}
                )
            results["limit"].append(run_worker("limit", target))
    engine.dispose()
    for mode in MODES:
        for result in results[mode]:
            if result["rows"] != size:
                raise BenchmarkBroken(f"{mode}: {result['rows']} rows fetched, {size} served")
    return results


def _med(results: Sequence[dict[str, Any]], key: str) -> float:
    return median([r[key] for r in results])


def size_figures(size: int, results: dict[str, list[dict[str, Any]]], smoke: bool) -> list[Figure]:
    label = f"{size:,}"
    limit = _med(results["limit"], "seconds")
    ratio_ok, memory_ok = at_most(RATIO_TARGET, smoke), at_most(MEMORY_TARGET_MB, smoke)
    target_ratio = f"≤ {RATIO_TARGET:g}× limit"
    figures = [
        Figure(
            NAME,
            f"{label}: limit (fetch+json+COPY unlogged)",
            limit,
            "s",
            reference="issue: ≈ 1.3 s for 100k on these machines",
        ),
    ]
    for kind, title in (("first", "first load"), ("resync", "unchanged re-sync")):
        direct = results[f"direct-{kind}"]
        seconds = _med(direct, "seconds")
        figures += [
            Figure(
                NAME,
                f"{label}: {title}",
                seconds,
                "s",
                reference=f"read+type {_med(direct, 'fetch_seconds'):.2f} s + "
                f"stage+apply {_med(direct, 'load_seconds'):.2f} s",
            ),
            Figure(
                NAME,
                f"{label}: {title} rows/s",
                size / seconds,
                "rows/s",
                reference=f"limit {size / limit:,.0f} rows/s",
            ),
            Figure(
                NAME,
                f"{label}: {title} / limit",
                seconds / limit,
                "×",
                target_ratio,
                ratio_ok(seconds / limit),
                reference="dlt merge ≈ 9 s / 1.3 s ≈ 7× (issue)",
            ),
            Figure(
                NAME,
                f"{label}: {title} peak RSS",
                _med(direct, "peak_mb"),
                "MB",
                f"< {MEMORY_TARGET_MB:g} MB",
                memory_ok(_med(direct, "peak_mb")),
                reference=f"after imports {_med(direct, 'baseline_mb'):.0f} MB; "
                f"limit's peak {_med(results['limit'], 'peak_mb'):.0f} MB",
            ),
        ]
    asset = {kind: results[f"asset-{kind}"] for kind in ("first", "resync")}
    for kind, title in (("first", "first load"), ("resync", "unchanged re-sync")):
        seconds = _med(asset[kind], "seconds")
        figures += [
            Figure(
                NAME,
                f"{label}: asset {title} (dg.materialize)",
                seconds,
                "s",
                reference=f"asset body {_med(asset[kind], 'asset_seconds'):.2f} s; "
                f"{seconds / limit:.1f}× limit",
            ),
            Figure(
                NAME,
                f"{label}: asset {title} peak RSS",
                _med(asset[kind], "peak_mb"),
                "MB",
                f"< {MEMORY_TARGET_MB:g} MB",
                memory_ok(_med(asset[kind], "peak_mb")),
                reference=f"after imports {_med(asset[kind], 'baseline_mb'):.0f} MB",
            ),
        ]
    written_report = max(r["written"] for r in results["direct-resync"] + asset["resync"])
    written_stats = max(r["written"] for r in results["resync_stats_written"])
    figures += [
        Figure(
            NAME,
            f"{label}: rows written by re-sync (SyncReport)",
            written_report,
            "rows",
            "0",
            at_most(0, smoke)(written_report),
        ),
        Figure(
            NAME,
            f"{label}: rows written by re-sync (pg_stat_user_tables)",
            written_stats,
            "rows",
            "0",
            at_most(0, smoke)(written_stats),
            reference="n_tup_ins + n_tup_upd + n_tup_del delta",
        ),
    ]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    parser.add_argument("--repetitions", type=int, default=3, help="Runs per mode (median).")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    for name in Target.__dataclass_fields__:
        parser.add_argument(f"--{name.replace('_', '-')}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        target = Target(*(getattr(args, name) for name in Target.__dataclass_fields__))
        print(json.dumps(worker(args.worker, target)))
        return 0
    from benchmarks.stack import bench_warehouse, machine_summary

    sizes = args.sizes or (SMOKE_SIZES if args.smoke else SIZES)
    repetitions = 1 if args.smoke else args.repetitions
    warehouse = bench_warehouse()
    engine = warehouse.engine()
    print(f"{NAME}: machine {machine_summary(engine)}; medians of {repetitions}")
    engine.dispose()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-full-sync-") as logs:
        for size in sizes:
            results = measure_size(size, repetitions, warehouse, Path(logs))
            figures += size_figures(size, results, args.smoke)
    print_figures(f"{NAME} ({ENTITY}, medians of {repetitions})", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
