"""Benchmark 3: webhook → row latency through the real processes, and where the time goes.

emulator (``PATCH`` → signed webhook) → ``poster-pipeline serve`` (stores the event) →
``dagster-daemon run`` (the ``webhook_queue`` sensor claims it and requests a partial sync) →
run (the repo's ``dagster.yaml``: QueuedRunCoordinator, at most 4 runs, one per account) →
the ingredient's row in the warehouse. A first full sync (``demo.sync_once``) runs before the
daemon starts, so only webhooks move rows.

**One at a time**: 50 changes (smoke: 3), each a rename of a different ingredient; the clock
runs from just before the ``PATCH`` to the moment a poll (every 50 ms) sees the new name. The
next change waits for the run to end and then a random pause of 0–10 s (seeded): without it
every change would arrive at the same point of the sensor's tick cycle (just after the run the
previous tick launched) and measure one sensor wait 50 times instead of the spread real
webhooks see. Per change the time is split with the event's
``received_at`` and the run's record and event log:

    PATCH → stored (emulator sends, receiver commits)        received_at
    stored → run created (sensor wait)                       run create_timestamp
    created → dequeued (run queue, launch)                   RUN_STARTING event
    dequeued → run started (new run process: imports, code)  RUN_START event
    started → step started (run setup, resources)            STEP_START event
    step → materialized (Poster fetch + load)                ASSET_MATERIALIZATION event
    (row visible; the run still has to end)                  end_time

**Burst**: then 20 changes (smoke: 3) back to back, to see the bound on concurrent runs hold;
a thread samples the instance every 250 ms for runs queued and runs in progress.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import dagster as dg
import requests
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
from benchmarks.stack import (
    ACCOUNT,
    Warehouse,
    bench_warehouse,
    machine_summary,
    receiver_env,
    running,
    start_emulator,
    start_receiver,
)
from poster_pipeline.demo import sync_once
from poster_pipeline.settings import Settings
from poster_pipeline.warehouse.schema import entity_table, webhook_events
from tests.processes import free_port, start, wait_until

NAME = "webhook → row"
ROOT = Path(__file__).resolve().parents[1]
P95_TARGET_S = 10.0
CHANGES, SMOKE_CHANGES = 50, 3
BURST, SMOKE_BURST = 20, 3
SPREAD_S, SMOKE_SPREAD_S = 10.0, 1.0  # random pause before each change: arrivals at any phase
POLL_S = 0.05
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
RUNNING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
SENSOR = "webhook_queue"
SEGMENTS = (
    ("PATCH → stored", "stored"),
    ("stored → run created (sensor)", "created"),
    ("created → dequeued (queue)", "dequeued"),
    ("dequeued → run started (process)", "started"),
    ("run started → step started", "step"),
    ("step → materialized (fetch + load)", "materialized"),
)


@dataclass(frozen=True)
class Stack:
    emulator_url: str
    warehouse: sa.Engine
    dagster_home: Path


@contextmanager
def real_stack(warehouse: Warehouse, tmp: Path, sensor_interval: int | None) -> Iterator[Stack]:
    """Emulator, receiver, a first full sync, then the daemon; all stopped on the way out.

    ``sensor_interval`` sets ``POSTER_WEBHOOK_SENSOR_INTERVAL`` (the sensor's minimum interval)
    for a what-if; None keeps the project's default.
    """
    dagster_home = tmp / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    extra = {}
    if sensor_interval is not None:
        extra["POSTER_WEBHOOK_SENSOR_INTERVAL"] = str(sensor_interval)
    receiver_port = free_port()
    with running([]) as processes:
        emulator = start_emulator(
            tmp,
            webhook_url=f"http://127.0.0.1:{receiver_port}/api/poster/webhooks",
            retry_delays="0.5,1,2,4,8",
        )
        processes.append(emulator.process)
        env = receiver_env(
            warehouse,
            POSTER_API_URL=emulator.api_url,
            POSTER_DATA_DIR=str(tmp / "data"),
            DAGSTER_HOME=str(dagster_home),
            **extra,
        )
        processes.append(start_receiver(tmp, env, port=receiver_port).process)
        settings = Settings(
            api_url=emulator.api_url,
            database_url=warehouse.url,
            token_key=warehouse.token_key,
            data_dir=tmp / "data",
        )
        synced, _ = sync_once(settings, ACCOUNT.name)
        if not synced:
            raise BenchmarkBroken("the first full sync failed")
        # Create the instance's SQLite storage before anything else opens it: the daemon and
        # this process creating it at once can stamp its schema version twice.
        with dg.DagsterInstance.from_config(str(dagster_home)):
            pass
        daemon = ["dagster-daemon", "run", "-m", "poster_pipeline.definitions"]
        processes.append(start(daemon, env, tmp / "daemon.log", cwd=tmp))
        engine = warehouse.engine()
        try:
            yield Stack(emulator.url, engine, dagster_home)
        finally:
            engine.dispose()


class RunSampler:
    """Samples the instance for runs queued or in progress, from a thread of its own."""

    def __init__(self, dagster_home: Path, every: float = 0.25) -> None:
        self._home, self._every = dagster_home, every
        self._stop = threading.Event()
        self.max_active = self.max_running = 0
        self._thread = threading.Thread(target=self._loop, name="run-sampler", daemon=True)

    def _loop(self) -> None:
        with dg.DagsterInstance.from_config(str(self._home)) as instance:
            while not self._stop.wait(self._every):
                active = instance.get_runs_count(dg.RunsFilter(statuses=ACTIVE))
                in_progress = instance.get_runs_count(dg.RunsFilter(statuses=RUNNING))
                self.max_active = max(self.max_active, active)
                self.max_running = max(self.max_running, in_progress)

    def __enter__(self) -> RunSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def live_ingredient_ids(stack: Stack) -> list[int]:
    answer = requests.get(f"{stack.emulator_url}/control/{ACCOUNT.name}/ingredients", timeout=10)
    answer.raise_for_status()
    return [item["ingredient_id"] for item in answer.json() if not item["delete"]]


def rename(stack: Stack, ingredient_id: int, name: str) -> float:
    """PATCH the ingredient's name in the emulator; returns the wall-clock time before it."""
    started = time.time()
    requests.patch(
        f"{stack.emulator_url}/control/{ACCOUNT.name}/ingredients/{ingredient_id}",
        json={"ingredient_name": name},
        timeout=10,
    ).raise_for_status()
    return started


def row_name(stack: Stack, ingredient_id: int) -> str | None:
    table = entity_table("ingredients")
    with stack.warehouse.connect() as conn:
        return conn.execute(
            sa.select(table.c.ingredient_name).where(
                table.c.account == ACCOUNT.name, table.c.ingredient_id == ingredient_id
            )
        ).scalar_one_or_none()


def wait_visible(stack: Stack, ingredient_id: int, name: str, timeout: float) -> float:
    """Poll the row until it shows ``name``; the wall-clock time it was first seen."""
    deadline = time.monotonic() + timeout
    while row_name(stack, ingredient_id) != name:
        if time.monotonic() > deadline:
            raise BenchmarkBroken(f"ingredient {ingredient_id} not renamed after {timeout:.0f} s")
        time.sleep(POLL_S)
    return time.time()


def settled_event(stack: Stack, ingredient_id: int, after: float) -> tuple[float, str]:
    """(received_at, settled_by_run) of the ingredient's event stored after ``after``."""
    received_after = datetime.fromtimestamp(after, UTC)
    query = sa.select(webhook_events.c.received_at, webhook_events.c.settled_by_run).where(
        webhook_events.c.object == "ingredient",
        webhook_events.c.object_id == ingredient_id,
        webhook_events.c.received_at >= received_after,
        webhook_events.c.status == "done",
    )

    def found() -> bool:
        with stack.warehouse.connect() as conn:
            return conn.execute(query).first() is not None

    wait_until(found, 60, f"the event of ingredient {ingredient_id} settled", step=POLL_S)
    with stack.warehouse.connect() as conn:
        received_at, run_id = conn.execute(query).one()
    return received_at.timestamp(), run_id


def run_times(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Wall-clock times of the run's milestones (waits for the run to end)."""
    wait_until(
        lambda: (r := instance.get_run_by_id(run_id)) is not None and r.is_finished,
        120,
        f"run {run_id} to end",
        step=0.1,
    )
    [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))
    times = {"created": record.create_timestamp.timestamp(), "ended": record.end_time or 0.0}
    firsts = {
        dg.DagsterEventType.RUN_STARTING: "dequeued",
        dg.DagsterEventType.RUN_START: "started",
        dg.DagsterEventType.STEP_START: "step",
        dg.DagsterEventType.ASSET_MATERIALIZATION: "materialized",
    }
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.event_type in firsts:
            times.setdefault(firsts[event.event_type], entry.timestamp)
    missing = set(firsts.values()) - set(times)
    if missing:
        raise BenchmarkBroken(f"run {run_id} has no {sorted(missing)} event")
    return times


def sensor_ticks(instance: dg.DagsterInstance, after: float) -> list[tuple[float, float]]:
    """(start, end) of the webhook sensor's ticks since ``after``, oldest first."""
    for state in instance.all_instigator_state():
        if state.instigator_name == SENSOR:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after)
            return sorted((t.timestamp, t.end_timestamp or t.timestamp) for t in ticks)
    raise BenchmarkBroken(f"the daemon has no state for the {SENSOR} sensor")


def one_change(
    stack: Stack, instance: dg.DagsterInstance, ingredient_id: int, n: int
) -> dict[str, float]:
    """Rename one ingredient and time its way to the row; returns the milestones."""
    name = f"bench {n} {time.time_ns()}"
    patched = rename(stack, ingredient_id, name)
    visible = wait_visible(stack, ingredient_id, name, timeout=180)
    stored, run_id = settled_event(stack, ingredient_id, patched - 1)
    return {"patched": patched, "stored": stored, "visible": visible, **run_times(instance, run_id)}


def burst(stack: Stack, instance: dg.DagsterInstance, ids: Sequence[int]) -> dict[str, float]:
    """Rename ``ids`` back to back; time until every row shows its new name."""
    names = {i: f"burst {i} {time.time_ns()}" for i in ids}
    started = time.time()
    for ingredient_id, name in names.items():
        rename(stack, ingredient_id, name)
    last = max(wait_visible(stack, i, name, timeout=300) for i, name in names.items())
    runs = {settled_event(stack, i, started - 1)[1] for i in ids}
    for run_id in runs:
        run_times(instance, run_id)
    return {"seconds": last - started, "runs": len(runs)}


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def figures_for(
    changes: list[dict[str, float]],
    warmup: float,
    burst_result: dict[str, float],
    sampler: RunSampler,
    ticks: list[tuple[float, float]],
    burst_size: int,
    smoke: bool,
) -> list[Figure]:
    totals = [c["visible"] - c["patched"] for c in changes]
    gaps = [b[0] - a[0] for a, b in pairwise(ticks)]
    durations = [end - start for start, end in ticks]
    figures = [
        Figure(NAME, "PATCH → row visible, p50", median(totals), "s"),
        Figure(
            NAME,
            "PATCH → row visible, p95",
            p95(totals),
            "s",
            f"≤ {P95_TARGET_S:g} s",
            at_most(P95_TARGET_S, smoke)(p95(totals)),
            f"{len(totals)} changes one at a time, at random phases; max {max(totals):.2f} s",
        ),
    ]
    previous = "patched"
    for title, key in SEGMENTS:
        parts = [c[key] - c[previous] for c in changes]
        figures.append(
            Figure(
                NAME,
                f"  {title}, p50",
                median(parts),
                "s",
                reference=f"p95 {p95(parts):.2f} s, max {max(parts):.2f} s",
            )
        )
        previous = key
    tail = [c["visible"] - c["materialized"] for c in changes]
    after = [c["ended"] - c["visible"] for c in changes]
    figures += [
        Figure(NAME, "  materialized → row seen by the poll, p50", median(tail), "s"),
        Figure(NAME, "  row visible → run ended (not in the latency), p50", median(after), "s"),
        Figure(
            NAME,
            f"{SENSOR} sensor: time between ticks, p50",
            median(gaps),
            "s",
            reference=f"p95 {p95(gaps):.2f} s, max {max(gaps, default=0):.2f} s; "
            f"{len(ticks)} ticks",
        ),
        Figure(
            NAME,
            f"{SENSOR} sensor: tick duration, p50",
            median(durations),
            "s",
            reference=f"p95 {p95(durations):.2f} s",
        ),
        Figure(NAME, "first change after the daemon started", warmup, "s"),
        Figure(
            NAME,
            f"burst of {burst_size} changes: all rows visible",
            burst_result["seconds"],
            "s",
            reference=f"{burst_result['runs']} runs",
        ),
        Figure(
            NAME,
            "runs in progress at once, at most",
            sampler.max_running,
            "",
            "bounded (dagster.yaml: ≤ 4, 1 per account)",
            at_most(4, smoke)(sampler.max_running),
            f"queued or in progress at most {sampler.max_active}",
        ),
    ]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    parser.add_argument("--changes", type=int, default=None, help="Changes one at a time.")
    parser.add_argument("--burst", type=int, default=None, help="Changes in the burst.")
    parser.add_argument(
        "--spread",
        type=float,
        default=None,
        help=f"Longest random pause before a change, s (default {SPREAD_S:g}).",
    )
    parser.add_argument(
        "--sensor-interval",
        type=int,
        default=None,
        help="POSTER_WEBHOOK_SENSOR_INTERVAL for the daemon (a what-if; default: the project's).",
    )
    args = parser.parse_args(argv)
    count = args.changes or (SMOKE_CHANGES if args.smoke else CHANGES)
    burst_size = args.burst or (SMOKE_BURST if args.smoke else BURST)
    spread = args.spread if args.spread is not None else SMOKE_SPREAD_S if args.smoke else SPREAD_S
    pauses = random.Random(6)
    warehouse = bench_warehouse()
    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        real_stack(warehouse, Path(tmp), args.sensor_interval) as stack,
    ):
        print(f"{NAME}: machine {machine_summary(stack.warehouse)}")
        ids = live_ingredient_ids(stack)
        if len(ids) < count + burst_size + 1:
            raise BenchmarkBroken(f"only {len(ids)} live ingredients in the emulator")
        with (
            dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance,
            RunSampler(stack.dagster_home) as sampler,
        ):
            began = time.time()
            first = one_change(stack, instance, ids[0], 0)
            warmup = first["visible"] - first["patched"]
            changes = []
            for n in range(1, count + 1):
                time.sleep(pauses.uniform(0, spread))
                changes.append(one_change(stack, instance, ids[n], n))
            burst_ids = ids[count + 1 : count + 1 + burst_size]
            burst_result = burst(stack, instance, burst_ids)
            ticks = sensor_ticks(instance, began)
        figures = figures_for(changes, warmup, burst_result, sampler, ticks, burst_size, args.smoke)
    instance_kind = "repo dagster.yaml"
    if args.sensor_interval is not None:
        instance_kind += f", webhook sensor interval {args.sensor_interval} s"
    print_figures(f"{NAME} (real processes, {instance_kind})", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
