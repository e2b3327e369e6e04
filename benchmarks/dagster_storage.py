"""Benchmark 5: how fast Dagster's own PostgreSQL storage grows, per day and per restaurant.

Dagster keeps every run, every event of every run (the event log), every sensor and schedule
tick and the daemons' heartbeats in its database, and the open-source instance deletes none of
them by itself except ticks (``retention:``). Sizing that database, and choosing a retention
for runs, needs the growth measured, not guessed. This benchmark runs the real stack (emulator
→ receiver → ``dagster-daemon`` → runs) on the production instance configuration,
``deploy/postgres/dagster.yaml``, against a PostgreSQL database of its own (the tests'
database name plus ``_bench_dagster``), and measures three things, each as the growth of every
table of that database in bytes (``pg_total_relation_size``: rows, indexes and TOAST) and in
rows, with the bytes of the new ``event_logs`` rows by event type:

1. **idle** (``--idle`` s, default 120): N restaurants connected, fully synced, no change: the
   daemon's sensor and schedule ticks, heartbeats and smart sync's evaluations;
2. **changes** (``--duration`` s, default 180): each of the N restaurants renames one
   ingredient every ``--every`` s (default 10), through signed webhooks and the
   ``webhook_drain`` runs, until every change is visible and no run is active; the idle rate
   over the same time is subtracted;
3. **full syncs** (``--full-syncs``, default 3): the ``full_sync`` job (every entity of one
   account, the nightly schedule's job) run in this process against the same instance, one
   account after another; the idle rate is subtracted. A launched run adds a few queue and
   launch events to what an in-process run writes (measured in phase 2's runs).

From these it prints the growth per day: a fixed part (idle, at N restaurants), the bytes per
change and per full sync, and the extrapolation per restaurant and day at stated change
rates. The nightly schedule is kept out of the windows (the daemon runs with a
``POSTER_TIMEZONE`` whose 03:00 is hours away); its cost is phase 3's, once per account a day.
Compute logs (each run's stdout and stderr) are files under ``DAGSTER_HOME``, not in the
database: their growth is printed apart.

    python -m benchmarks.dagster_storage [--restaurants 20] [--idle 120] [--duration 180]
        [--every 10] [--full-syncs 3] [--smoke] [--json FILE]
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks.figures import (
    BenchmarkBroken,
    Figure,
    common_arguments,
    print_figures,
    write_figures,
)
from benchmarks.stack import (
    bench_warehouse,
    far_from_three_am,
    machine_summary,
    receiver_env,
    running,
    start_emulator,
    start_receiver,
)
from benchmarks.webhook_latency import (
    ACTIVE,
    SMALL_SIZES,
    Stack,
    bench_accounts,
    drive,
    first_full_sync,
    plan_changes,
    poll_visible,
)
from poster_pipeline.orchestration.partitions import ACCOUNTS
from tests.databases import postgres_url
from tests.processes import free_port, start, wait_until

NAME = "Dagster storage growth"
ROOT = Path(__file__).resolve().parents[1]
INSTANCE_YAML = ROOT / "deploy" / "postgres" / "dagster.yaml"
DAGSTER_DB_SUFFIX = "_bench_dagster"
DAY_S = 86_400
RESTAURANTS, SMOKE_RESTAURANTS = 20, 2
IDLE_S, SMOKE_IDLE_S = 120.0, 15.0
DURATION_S, SMOKE_DURATION_S = 180.0, 20.0
EVERY_S, SMOKE_EVERY_S = 10.0, 5.0
FULL_SYNCS, SMOKE_FULL_SYNCS = 3, 1
WARM_UP_S = 20.0  # after the daemon's first tick: one-time writes (instigator state) settle
DRAIN_DEADLINE_S = 180.0
POLL_S = 0.2
#: Changes per restaurant and day for the extrapolation: a quiet back office, a busy one, and
#: one that edits its menu and stock all day long.
CHANGES_PER_DAY = (100, 1_000, 10_000)


# -- the Dagster database ---------------------------------------------------------------------


def dagster_database() -> tuple[str, sa.Engine]:
    """An empty database for Dagster's storage: (its ``postgresql+psycopg2`` URL for
    ``DAGSTER_PG_URL``, an engine on it for the measurements)."""
    url = postgres_url(DAGSTER_DB_SUFFIX)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    psycopg2_url = make_url(url).set(drivername="postgresql+psycopg2")
    return psycopg2_url.render_as_string(hide_password=False), engine


@dataclass(frozen=True)
class Snapshot:
    """Every table's size (bytes with indexes and TOAST) and row count, the event log's
    highest id, and the compute logs' bytes on disk."""

    at: float
    tables: Mapping[str, tuple[int, int]]  # table → (bytes of its rows, rows)
    disk: Mapping[str, int]  # table → bytes on disk, indexes and TOAST included
    last_event_id: int
    compute_log_bytes: int


def compute_log_bytes(dagster_home: Path) -> int:
    storage = dagster_home / "storage"
    return sum(p.stat().st_size for p in storage.rglob("*") if p.is_file())


def snapshot(engine: sa.Engine, dagster_home: Path) -> Snapshot:
    """Row bytes are ``pg_column_size`` of each whole row, summed: exact at any size, where the
    size on disk moves in 8 kB pages and would make a short window's growth a rounding error.
    The ratio of disk to row bytes at the end of a run converts one into the other."""
    tables: dict[str, tuple[int, int]] = {}
    disk: dict[str, int] = {}
    with engine.connect() as conn:
        names = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ).scalars()
        for name in list(names):
            quoted = conn.dialect.identifier_preparer.quote(name)
            disk[name] = int(
                conn.execute(
                    sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": quoted}
                ).scalar_one()
            )
            rows, size = conn.execute(
                sa.text(f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {quoted} t")
            ).one()
            tables[name] = (int(size), int(rows))
        last = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM event_logs")).scalar_one()
    return Snapshot(time.time(), tables, disk, int(last), compute_log_bytes(dagster_home))


def disk_factor(last: Snapshot) -> float:
    """Bytes on disk per byte of row data over the tables that grow (indexes, page headers and
    free space, dead tuples not yet vacuumed), from the last snapshot of a run."""
    growing = ("event_logs", "runs", "run_tags", "job_ticks", "asset_check_executions")
    rows = sum(last.tables.get(t, (0, 0))[0] for t in growing)
    return sum(last.disk.get(t, 0) for t in growing) / rows if rows else float("nan")


@dataclass(frozen=True)
class Growth:
    """What grew between two snapshots."""

    seconds: float
    tables: Mapping[str, tuple[int, int]]  # table → (bytes, rows) added
    events: Mapping[str, tuple[int, int]]  # event type → (rows, bytes of the event column)
    compute_log_bytes: int

    @property
    def bytes(self) -> int:
        return sum(b for b, _ in self.tables.values())

    @property
    def rows(self) -> int:
        return sum(r for _, r in self.tables.values())

    def table(self, name: str) -> tuple[int, int]:
        return self.tables.get(name, (0, 0))


def growth(engine: sa.Engine, before: Snapshot, after: Snapshot) -> Growth:
    tables = {
        name: (size - before.tables.get(name, (0, 0))[0], rows - before.tables.get(name, (0, 0))[1])
        for name, (size, rows) in after.tables.items()
    }
    with engine.connect() as conn:
        events = {
            str(kind or "log message"): (int(count), int(size or 0))
            for kind, count, size in conn.execute(
                sa.text(
                    "SELECT dagster_event_type, count(*), sum(octet_length(event)) FROM event_logs"
                    " WHERE id > :lo AND id <= :hi GROUP BY 1 ORDER BY 3 DESC"
                ),
                {"lo": before.last_event_id, "hi": after.last_event_id},
            )
        }
    return Growth(
        after.at - before.at,
        tables,
        events,
        after.compute_log_bytes - before.compute_log_bytes,
    )


# -- the stack ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageStack:
    stack: Stack
    dagster_engine: sa.Engine
    env: Mapping[str, str]


@contextmanager
def pg_stack(tmp: Path, n: int) -> Iterator[StorageStack]:
    """The webhook benchmark's stack (emulator, receiver, a first full sync outside Dagster,
    then ``dagster-daemon``) on ``deploy/postgres/dagster.yaml`` and a fresh Dagster
    database; everything stopped on the way out."""
    accounts = bench_accounts(n)
    warehouse = bench_warehouse(accounts=accounts)
    dagster_url, dagster_engine = dagster_database()
    dagster_home = tmp / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(INSTANCE_YAML, dagster_home / "dagster.yaml")
    sizes = {**SMALL_SIZES, "ingredients": 400}
    receiver_port = free_port()
    with running([]) as processes:
        emulator = start_emulator(
            tmp,
            sizes=sizes,
            webhook_url=f"http://127.0.0.1:{receiver_port}/api/poster/webhooks",
            retry_delays="0.5,1,2,4,8",
            accounts=accounts,
        )
        processes.append(emulator.process)
        env = receiver_env(
            warehouse,
            POSTER_API_URL=emulator.api_url,
            POSTER_DATA_DIR=str(tmp / "data"),
            POSTER_TIMEZONE=far_from_three_am(),
            DAGSTER_HOME=str(dagster_home),
            DAGSTER_PG_URL=dagster_url,
        )
        processes.append(start_receiver(tmp, env, port=receiver_port).process)
        engine = warehouse.engine()
        try:
            first_full_sync(emulator.api_url, engine, accounts)
            with instance_of(env) as instance:  # creates the schema before the daemon starts
                instance.add_dynamic_partitions(ACCOUNTS, [a.name for a in accounts])
            daemon = ["dagster-daemon", "run", "-m", "poster_pipeline.definitions"]
            processes.append(start(daemon, env, tmp / "daemon.log", cwd=tmp))
            stack = Stack(emulator.url, engine, dagster_home, processes[-1].pid, tuple(accounts))
            yield StorageStack(stack, dagster_engine, env)
        finally:
            engine.dispose()
            dagster_engine.dispose()


@contextmanager
def instance_of(env: Mapping[str, str]) -> Iterator[dg.DagsterInstance]:
    """The stack's instance from this process: ``dagster.yaml`` reads ``DAGSTER_PG_URL`` from
    the environment, and the code location reads the ``POSTER_*`` settings at import."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            yield instance
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- the phases -----------------------------------------------------------------------------


def wait_first_tick(stack: StorageStack) -> None:
    def ticked() -> bool:
        with stack.dagster_engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM job_ticks")).scalar_one())

    wait_until(ticked, 120, "a first sensor tick of the daemon", step=0.5)


def idle_phase(stack: StorageStack, seconds: float) -> Growth:
    engine, home = stack.dagster_engine, stack.stack.dagster_home
    before = snapshot(engine, home)
    time.sleep(seconds)  # the measured window itself: nothing is waited for
    return growth(engine, before, snapshot(engine, home))


def no_active_run(instance: dg.DagsterInstance) -> bool:
    return instance.get_runs_count(dg.RunsFilter(statuses=ACTIVE)) == 0


@dataclass(frozen=True)
class ChangeResult:
    growth: Growth
    changes: int
    visible: int
    runs: int


def change_phase(
    stack: StorageStack, instance: dg.DagsterInstance, duration: float, every: float
) -> ChangeResult:
    """Every restaurant renames an ingredient each ``every`` s for ``duration`` s; the window
    closes when every change is visible and no run is queued or running."""
    engine, home = stack.dagster_engine, stack.stack.dagster_home
    changes = plan_changes(stack.stack, duration, every, random.Random(5))
    runs_before = instance.get_runs_count()
    before = snapshot(engine, home)
    drive(stack.stack.emulator_url, changes)
    deadline = time.monotonic() + DRAIN_DEADLINE_S
    while poll_visible(stack.stack.warehouse, changes) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    wait_until(lambda: no_active_run(instance), DRAIN_DEADLINE_S, "the drain runs to end", POLL_S)
    after = snapshot(engine, home)
    visible = sum(1 for c in changes if c.visible is not None)
    runs = instance.get_runs_count() - runs_before
    return ChangeResult(growth(engine, before, after), len(changes), visible, runs)


def full_sync_phase(stack: StorageStack, count: int) -> tuple[Growth, Snapshot]:
    """The nightly schedule's job, ``full_sync``, for ``count`` accounts one after another,
    in this process against the stack's instance."""
    engine, home = stack.dagster_engine, stack.stack.dagster_home
    accounts = [a.name for a in stack.stack.accounts[:count]]
    with instance_of(stack.env) as instance:
        from poster_pipeline.definitions import defs  # reads the stack's POSTER_* settings

        job = defs.resolve_job_def("full_sync")
        wait_until(lambda: no_active_run(instance), 60, "no active run", POLL_S)
        before = snapshot(engine, home)
        for account in accounts:
            result = job.execute_in_process(
                partition_key=account, instance=instance, raise_on_error=False
            )
            if not result.success:
                raise BenchmarkBroken(f"the full sync of {account} failed")
        after = snapshot(engine, home)
        return growth(engine, before, after), after


# -- figures ----------------------------------------------------------------------------------


def less_idle(measured: Growth, idle: Growth) -> tuple[float, float]:
    """(bytes, rows) of ``measured`` beyond what the idle rate adds in the same time."""
    share = measured.seconds / idle.seconds
    return measured.bytes - idle.bytes * share, measured.rows - idle.rows * share


def mb(value: float) -> float:
    return value / 1e6


def top_tables(g: Growth, k: int = 5) -> str:
    ranked = sorted(g.tables.items(), key=lambda item: -item[1][0])[:k]
    return "; ".join(f"{t} {b / 1e3:,.0f} kB/{r:,} rows" for t, (b, r) in ranked if b or r)


def top_events(g: Growth, k: int = 6) -> str:
    ranked = list(g.events.items())[:k]
    return "; ".join(f"{t} {n:,}×{(s / n if n else 0):,.0f} B" for t, (n, s) in ranked)


def figures_for(
    n: int, idle: Growth, changes: ChangeResult, full: Growth, full_syncs: int, factor: float
) -> list[Figure]:
    """Row bytes throughout; the per-day figures also on disk (row bytes × ``factor``)."""
    per_day_idle = idle.bytes / idle.seconds * DAY_S
    idle_rows = idle.rows / idle.seconds * DAY_S
    change_bytes, change_rows = less_idle(changes.growth, idle)
    per_change = change_bytes / max(changes.changes, 1)
    per_change_rows = change_rows / max(changes.changes, 1)
    full_bytes, full_rows = less_idle(full, idle)
    per_full = full_bytes / max(full_syncs, 1)
    per_full_rows = full_rows / max(full_syncs, 1)
    events_bytes, events_rows = changes.growth.table("event_logs")
    idle_events, idle_event_rows = idle.table("event_logs")
    figures = [
        Figure(
            NAME,
            "on disk per byte of row data",
            factor,
            "×",
            reference="event_logs, runs, run_tags, job_ticks, asset_check_executions at the end "
            "(indexes, page overhead, dead tuples)",
        ),
        Figure(
            NAME,
            f"idle, {n} restaurants: growth per day",
            mb(per_day_idle),
            "MB/day",
            reference=f"on disk ≈ {mb(per_day_idle * factor):,.1f} MB/day; {idle_rows:,.0f} "
            f"rows/day; {idle.seconds:.0f} s measured; {top_tables(idle)}",
        ),
        Figure(
            NAME,
            "  idle: event log",
            mb(idle_events / idle.seconds * DAY_S),
            "MB/day",
            reference=f"{idle_event_rows / idle.seconds * DAY_S:,.0f} rows/day; "
            f"{top_events(idle) or 'no run, no event'}",
        ),
        Figure(
            NAME,
            "per change (webhook → drain run)",
            per_change / 1e3,
            "kB",
            reference=f"{per_change_rows:,.1f} rows; {changes.changes:,} changes "
            f"({changes.visible:,} visible), {changes.runs} runs, "
            f"{changes.growth.seconds:.0f} s, idle rate subtracted",
        ),
        Figure(
            NAME,
            "  per change: event log",
            events_bytes / max(changes.changes, 1) / 1e3,
            "kB",
            reference=f"{events_rows / max(changes.changes, 1):,.1f} rows; "
            f"{top_events(changes.growth)}",
        ),
        Figure(NAME, "  per change: tables", "", reference=top_tables(changes.growth, 8)),
        Figure(
            NAME,
            "  per change: compute logs (files)",
            changes.growth.compute_log_bytes / max(changes.changes, 1) / 1e3,
            "kB",
            reference=f"{changes.growth.compute_log_bytes / 1e3:,.0f} kB under DAGSTER_HOME",
        ),
        Figure(
            NAME,
            "per full sync of one account (full_sync job)",
            per_full / 1e3,
            "kB",
            reference=f"{per_full_rows:,.0f} rows; {full_syncs} in-process runs, "
            f"{full.seconds:.0f} s; {top_events(full)}",
        ),
        Figure(
            NAME,
            "  per full sync: compute logs (files)",
            full.compute_log_bytes / max(full_syncs, 1) / 1e3,
            "kB",
        ),
    ]
    for rate in CHANGES_PER_DAY:
        per_restaurant = rate * per_change + per_full
        figures.append(
            Figure(
                NAME,
                f"per restaurant and day: {rate:,} changes + 1 nightly full sync",
                mb(per_restaurant),
                "MB/day",
                reference=f"on disk ≈ {mb(per_restaurant * factor):,.1f} MB/day, "
                f"{mb(per_restaurant * factor) * 30 / 1e3:,.2f} GB in 30 days",
            )
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    parser.add_argument("--restaurants", type=int, default=None, help="Restaurants (default 20).")
    parser.add_argument("--idle", type=float, default=None, help="Idle window, s (default 120).")
    parser.add_argument(
        "--duration", type=float, default=None, help="Seconds of changes (default 180)."
    )
    parser.add_argument(
        "--every", type=float, default=None, help="Seconds between a restaurant's changes."
    )
    parser.add_argument(
        "--full-syncs", type=int, default=None, help="Accounts fully synced in phase 3."
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    n = args.restaurants or (SMOKE_RESTAURANTS if smoke else RESTAURANTS)
    idle_s = args.idle or (SMOKE_IDLE_S if smoke else IDLE_S)
    duration = args.duration or (SMOKE_DURATION_S if smoke else DURATION_S)
    every = args.every or (SMOKE_EVERY_S if smoke else EVERY_S)
    full_syncs = min(n, args.full_syncs or (SMOKE_FULL_SYNCS if smoke else FULL_SYNCS))
    with (
        tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp,
        pg_stack(Path(tmp), n) as stack,
    ):
        print(f"{NAME}: machine {machine_summary(stack.stack.warehouse)}", flush=True)
        wait_first_tick(stack)
        time.sleep(WARM_UP_S)  # not measured: lets the daemon's start-up writes settle
        print(f"{NAME}: idle {idle_s:g} s, {n} restaurants", flush=True)
        idle = idle_phase(stack, idle_s)
        with instance_of(stack.env) as instance:
            print(f"{NAME}: changes every {every:g} s for {duration:g} s", flush=True)
            changes = change_phase(stack, instance, duration, every)
        print(f"{NAME}: {full_syncs} full syncs", flush=True)
        full, last = full_sync_phase(stack, full_syncs)
    if changes.visible != changes.changes:
        raise BenchmarkBroken(f"only {changes.visible} of {changes.changes} changes arrived")
    figures = figures_for(n, idle, changes, full, full_syncs, disk_factor(last))
    print_figures(f"{NAME} (deploy/postgres/dagster.yaml, PostgreSQL)", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
