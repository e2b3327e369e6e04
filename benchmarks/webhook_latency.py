"""Benchmark 3: webhook → row latency through the real processes, and where the time goes.

emulator (``PATCH`` → signed webhook) → ``poster-pipeline serve`` (stores the event) →
``dagster-daemon run`` (the ``webhook_queue`` sensor claims it and requests a partial sync) →
run (the repo's ``dagster.yaml``: QueuedRunCoordinator, at most 4 runs, one per account) →
the ingredient's row in the warehouse. Every stack gets a fresh warehouse, and a first full
sync of every account runs before the daemon starts, so only webhooks move rows.

**One account** (in the stack of one restaurant): 50 changes one at a time (smoke: 3), each a
rename of a different ingredient; the clock runs from just before the ``PATCH`` to the moment
a poll (every 50 ms) sees the new name. The next change waits for the run to end and then a
random pause of 0–10 s (seeded): without it every change would arrive at the same point of
the sensor's tick cycle (just after the run the previous tick launched) and measure one
sensor wait 50 times instead of the spread real webhooks see. A change that arrives while a
drain run is still taking events (it stays ``drain_take_for_s``, ending ``drain_idle_s``
after its last event) is applied by that run, and is counted apart. A change that needed a new
run is split with the event's ``received_at`` and the run's record and event log:

    PATCH → stored (emulator sends, receiver commits)        received_at
    stored → run created (sensor wait)                       run create_timestamp
    created → dequeued (run queue, launch)                   RUN_STARTING event
    dequeued → run started (new run process: imports, code)  RUN_START event
    started → step started (run setup, resources)            STEP_START event
    step → materialized (Poster fetch + load)                first ASSET_MATERIALIZATION after
                                                             the event was stored

A milestone a run does not log leaves its segment out. Then a **burst** of 20 changes (smoke:
3) back to back, to see the bound on concurrent runs hold; a thread samples the instance every
250 ms.

**Many restaurants**: for N = 1, 20 and 200 accounts (smoke: 1 and 3), a stack of its own
with N accounts in the emulator, all connected. Each account renames one of its ingredients
every 3 s from a random (seeded) phase for 60 s (smoke: 20 s), about N/3 changes a second,
sent by a small thread pool through the control API (the emulator then sends the signed
hook). The moment a change is visible is the first poll that shows its name; one query every
100 ms reads the names of all outstanding (account, ingredient) pairs, so the poll's cost does
not grow with the rate. Per N:

- PATCH → row visible, p50 and p95, split into PATCH → stored (``received_at``), stored →
  settled (the event's ``updated_at`` when done: the wait for a claim, by a running drain run
  or a sensor tick and a new run, then fetch and load) and settled → seen by the poll; and how
  many events a drain run already running applied;
- runs the ``webhook_queue`` sensor launched per minute of the window, which must not grow
  with N (one run per (account, entity) does);
- CPU seconds and peak RSS of the run processes during the window (``/proc``);
- events lost: changes still not visible at a drain deadline after the last change, with the
  queue's statuses (pending, claimed, dead) at that point.

Accounts past the first have small data (a few rows per entity) so that the first full sync
of 200 accounts takes seconds; a partial sync re-fetches only the named objects, so the size
of the lists does not enter the measured path.
"""

from __future__ import annotations

import math
import random
import shutil
import sys
import tempfile
import threading
import time
from argparse import Namespace
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
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
    SEED,
    RunProcessMeter,
    RunProcessUsage,
    bench_warehouse,
    far_from_three_am,
    machine_summary,
    receiver_env,
    running,
    start_emulator,
    start_receiver,
)
from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.emulator import EmulatorAccount
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.poster.client import ClientSettings, PosterClient
from poster_pipeline.sync.listing import full_listing
from poster_pipeline.warehouse.load import full_sync
from poster_pipeline.warehouse.schema import EVENT_STATUSES, entity_table, webhook_events
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
SENSOR_NAME_TAG = "dagster/sensor_name"  # Dagster tags every run a sensor requests with it
SEGMENTS = (
    ("PATCH → stored", "stored"),
    ("stored → run created (sensor)", "created"),
    ("created → dequeued (queue)", "dequeued"),
    ("dequeued → run started (process)", "started"),
    ("run started → step started", "step"),
    ("step → materialized (fetch + load)", "materialized"),
)

# Many restaurants.
RESTAURANTS, SMOKE_RESTAURANTS = (1, 20, 200), (1, 3)
DURATION_S, SMOKE_DURATION_S = 60.0, 20.0
EVERY_S = 3.0  # each account renames one ingredient this often
DRAIN_S, SMOKE_DRAIN_S = 180.0, 60.0  # after the last change, for the rest to become visible
MANY_POLL_S = 0.1
RUNS_PER_MINUTE_TARGET = 15
PATCH_WORKERS = 8  # 200 accounts: ~67 PATCHes/s of a few ms each
#: Per account when there are several: a few rows of each entity; the ingredients (one per
#: change of the account) are added from the duration.
SMALL_SIZES: Mapping[str, int] = {
    "suppliers": 3,
    "ingredient_categories": 3,
    "product_categories": 3,
    "workshops": 2,
    "storages": 2,
    "products": 10,
}


def restaurants(n: int) -> str:
    return f"{n} restaurant{'s' * (n != 1)}"


def bench_accounts(n: int) -> list[EmulatorAccount]:
    """The demo account and ``n - 1`` more (``bench-001``…), tokens derived from the seed."""
    return [ACCOUNT, *(EmulatorAccount.derive(f"bench-{i:03d}", SEED) for i in range(1, n))]


@dataclass(frozen=True)
class Stack:
    emulator_url: str
    warehouse: sa.Engine
    dagster_home: Path
    daemon_group: int  # the daemon's process group: its code server and the run processes
    accounts: tuple[EmulatorAccount, ...]


def first_full_sync(api_url: str, engine: sa.Engine, accounts: Sequence[EmulatorAccount]) -> None:
    """Every entity of every account, fully synced: only webhooks move rows afterwards, and
    smart sync finds nothing due (it would otherwise launch full syncs of every account in the
    middle of the measurement).

    The asset's own load path (``sync.listing`` streamed into ``warehouse.load.full_sync``, which
    records the sync in ``sync_status``) without Dagster, four accounts at once and without
    the client's 5 calls/s throttle: ``dg.materialize`` costs ~2 s per account, 7 minutes for
    200, and this is set-up, not measured.
    """
    settings = ClientSettings(base_url=api_url, requests_per_second=1000.0)

    def sync(account: EmulatorAccount) -> None:
        with (
            PosterClient(account.token, account=account.name, settings=settings) as client,
            engine.connect() as conn,
        ):
            for spec in ENTITIES:
                # What a full sync reads: one list, stock per storage, supplies by date window.
                now = datetime.now(UTC)
                listing = full_listing(
                    client, spec, conn, account.name, today=now.date(), window_days=62
                )
                with closing(listing.records) as listed:
                    full_sync(conn, spec, account.name, listed, now=now, window=listing.window)

    with ThreadPoolExecutor(4, thread_name_prefix="first-sync") as pool:
        list(pool.map(sync, accounts))


@contextmanager
def real_stack(
    tmp: Path,
    accounts: Sequence[EmulatorAccount],
    sizes: Mapping[str, int] | None,
    sensor_interval: int | None,
) -> Iterator[Stack]:
    """A fresh warehouse with ``accounts`` connected, the emulator serving them, the receiver,
    a first full sync, then the daemon; all stopped on the way out.

    ``sensor_interval`` sets ``POSTER_WEBHOOK_SENSOR_INTERVAL`` (the sensor's minimum interval)
    for a what-if; None keeps the project's default.
    """
    tmp.mkdir()
    warehouse = bench_warehouse(accounts=accounts)
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
            # The nightly schedule catches up a 03:00 of the last 6 hours: not in the window.
            POSTER_TIMEZONE=far_from_three_am(),
            DAGSTER_HOME=str(dagster_home),
            **extra,
        )
        processes.append(start_receiver(tmp, env, port=receiver_port).process)
        engine = warehouse.engine()
        try:
            started = time.monotonic()
            first_full_sync(emulator.api_url, engine, accounts)
            print(
                f"{NAME}: first full sync of {restaurants(len(accounts))}: "
                f"{time.monotonic() - started:.1f} s",
                flush=True,
            )
            # Create the instance's SQLite storage before anything else opens it (the daemon
            # and this process creating it at once can stamp its schema version twice), with
            # a partition per account, as a deployment that has run for a while has.
            with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                instance.add_dynamic_partitions(ACCOUNTS, [a.name for a in accounts])
            daemon = ["dagster-daemon", "run", "-m", "poster_pipeline.definitions"]
            processes.append(start(daemon, env, tmp / "daemon.log", cwd=tmp))
            yield Stack(emulator.url, engine, dagster_home, processes[-1].pid, tuple(accounts))
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


def live_ingredient_ids(stack: Stack, account: str) -> list[int]:
    answer = requests.get(f"{stack.emulator_url}/control/{account}/ingredients", timeout=10)
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
        webhook_events.c.account == ACCOUNT.name,
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


def run_times(instance: dg.DagsterInstance, run_id: str, stored: float) -> dict[str, float]:
    """Wall-clock times of the run's milestones for an event stored at ``stored``: the run's
    own start (absent when the run was already running before the event was stored: a drain
    run keeps taking events) and its first materialization after ``stored``. Waits for that
    materialization, not for the run to end."""

    def milestones() -> dict[str, float]:
        [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))
        times = {"created": record.create_timestamp.timestamp()}
        firsts = {
            dg.DagsterEventType.RUN_STARTING: "dequeued",
            dg.DagsterEventType.RUN_START: "started",
            dg.DagsterEventType.STEP_START: "step",
        }
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type in firsts:
                times.setdefault(firsts[event.event_type], entry.timestamp)
            elif (
                event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
                and entry.timestamp >= stored
            ):
                times.setdefault("materialized", entry.timestamp)
        if times["created"] < stored:  # a warm run: its start is not this event's
            times = {"materialized": times["materialized"]} if "materialized" in times else {}
            times["warm"] = 1.0
        return times

    wait_until(lambda: "materialized" in milestones(), 120, f"run {run_id} materialized", step=0.1)
    return milestones()


def sensor_ticks(instance: dg.DagsterInstance, after: float) -> list[tuple[float, float]]:
    """(start, end) of the webhook sensor's ticks since ``after``, oldest first (none before
    the daemon has evaluated it once)."""
    for state in instance.all_instigator_state():
        if state.instigator_name == SENSOR:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after)
            return sorted((t.timestamp, t.end_timestamp or t.timestamp) for t in ticks)
    return []


def one_change(
    stack: Stack, instance: dg.DagsterInstance, ingredient_id: int, n: int
) -> dict[str, float]:
    """Rename one ingredient and time its way to the row; returns the milestones."""
    name = f"bench {n} {time.time_ns()}"
    patched = rename(stack, ingredient_id, name)
    visible = wait_visible(stack, ingredient_id, name, timeout=180)
    stored, run_id = settled_event(stack, ingredient_id, patched - 1)
    times = run_times(instance, run_id, stored)
    return {"patched": patched, "stored": stored, "visible": visible, **times}


def burst(stack: Stack, instance: dg.DagsterInstance, ids: Sequence[int]) -> dict[str, float]:
    """Rename ``ids`` back to back; time until every row shows its new name."""
    names = {i: f"burst {i} {time.time_ns()}" for i in ids}
    started = time.time()
    for ingredient_id, name in names.items():
        rename(stack, ingredient_id, name)
    last = max(wait_visible(stack, i, name, timeout=300) for i, name in names.items())
    runs = {settled_event(stack, i, started - 1)[1] for i in ids}
    return {"seconds": last - started, "runs": len(runs)}


def p95(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def spread_figure(name: str, values: Sequence[float]) -> Figure:
    """The p50 of ``values`` with their p95 and max as the reference."""
    return Figure(
        NAME,
        f"{name}, p50",
        median(values),
        "s",
        reference=f"p95 {p95(values):.2f} s, max {max(values, default=math.nan):.2f} s",
    )


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
    cold = [c for c in changes if "warm" not in c]
    warm = [c for c in changes if "warm" in c]
    figures += [
        Figure(
            NAME,
            "  changes applied by a drain run already running",
            len(warm),
            "",
            reference=f"of {len(changes)}; the others waited for a sensor tick and a new run",
        ),
        spread_figure(
            "  by a running drain: PATCH → row visible", [c["visible"] - c["patched"] for c in warm]
        ),
    ]
    previous = "patched"
    for title, key in SEGMENTS:
        parts = [c[key] - c[previous] for c in cold if key in c and previous in c]
        if parts:
            figures.append(spread_figure(f"  by a new run: {title}", parts))
        previous = key
    tail = [c["visible"] - c["materialized"] for c in changes if "materialized" in c]
    figures += [
        Figure(NAME, "  materialized → row seen by the poll, p50", median(tail), "s"),
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


def one_account(
    stack: Stack,
    instance: dg.DagsterInstance,
    count: int,
    burst_size: int,
    spread: float,
    smoke: bool,
) -> list[Figure]:
    """The demo account's changes one at a time, then its burst."""
    ids = live_ingredient_ids(stack, ACCOUNT.name)
    if len(ids) < count + burst_size + 1:
        raise BenchmarkBroken(f"only {len(ids)} live ingredients in the emulator")
    pauses = random.Random(6)
    with RunSampler(stack.dagster_home) as sampler:
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
    return figures_for(changes, warmup, burst_result, sampler, ticks, burst_size, smoke)


# -- many restaurants -------------------------------------------------------------------------


@dataclass
class Change:
    """One rename of the many-restaurant scenario."""

    account: str
    ingredient_id: int
    name: str
    offset: float  # when to send it, s after the start
    patched: float = 0.0  # wall clock just before its PATCH (0: not sent yet)
    visible: float | None = None  # wall clock of the first poll that showed the name


def plan_changes(stack: Stack, duration: float, every: float, rng: random.Random) -> list[Change]:
    """Every account renames one ingredient each ``every`` s from a random phase until
    ``duration``; in time order. Each change renames a different ingredient of its account, so
    a later rename can never hide an earlier one from the poll."""
    changes: list[Change] = []
    for account in stack.accounts:
        phase = rng.uniform(0, every)
        offsets = [phase + k * every for k in range(math.ceil((duration - phase) / every))]
        ids = live_ingredient_ids(stack, account.name)
        if len(ids) < len(offsets):
            raise BenchmarkBroken(
                f"{account.name} has {len(ids)} live ingredients, not {len(offsets)}"
            )
        changes += [
            Change(account.name, ingredient_id, f"many {account.name} {k} {time.time_ns()}", t)
            for k, (ingredient_id, t) in enumerate(zip(reversed(ids), offsets, strict=False))
        ]
    return sorted(changes, key=lambda c: c.offset)


def drive(emulator_url: str, changes: Sequence[Change]) -> None:
    """Send each change's PATCH at its offset from now, from a small pool (each thread with a
    kept-alive session) so that one slow answer does not hold up the other accounts' changes;
    raises the first PATCH that failed."""
    local = threading.local()
    sessions: list[requests.Session] = []

    def patch(change: Change) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            sessions.append(local.session)
        change.patched = time.time()
        local.session.patch(
            f"{emulator_url}/control/{change.account}/ingredients/{change.ingredient_id}",
            json={"ingredient_name": change.name},
            timeout=10,
        ).raise_for_status()

    start_at = time.monotonic()
    try:
        with ThreadPoolExecutor(PATCH_WORKERS, thread_name_prefix="patch") as pool:
            futures = []
            for change in changes:
                time.sleep(max(0.0, start_at + change.offset - time.monotonic()))
                futures.append(pool.submit(patch, change))
            for future in futures:
                future.result()
    finally:
        for session in sessions:
            session.close()


def poll_visible(engine: sa.Engine, changes: Sequence[Change]) -> int:
    """One query for the current names of every sent, not yet visible change's row; those
    that show their new name are visible now. Returns how many changes are still not visible."""
    outstanding = [c for c in changes if c.patched and c.visible is None]
    if outstanding:
        table = entity_table("ingredients")
        pairs = sa.tuple_(table.c.account, table.c.ingredient_id)
        query = sa.select(table.c.account, table.c.ingredient_id, table.c.ingredient_name).where(
            pairs.in_({(c.account, c.ingredient_id) for c in outstanding})
        )
        with engine.connect() as conn:
            names = {(account, i): name for account, i, name in conn.execute(query)}
        seen = time.time()
        for change in outstanding:
            if names.get((change.account, change.ingredient_id)) == change.name:
                change.visible = seen
    return sum(1 for c in changes if c.visible is None)


@dataclass(frozen=True)
class ManyResult:
    changes: list[Change]
    window: tuple[float, float]  # wall clock: the changes were sent in between
    drained_in: float  # s after the last change until all were visible (or the deadline)
    drain: float  # the deadline, s after the last change
    stored: dict[tuple[str, int], float]  # (account, ingredient) → received_at
    settled: dict[tuple[str, int], float]  # → when its event was settled (done)
    warm: int  # events settled by a run created before they were stored
    launched: int  # runs the webhook sensor created within the window
    statuses: dict[str, int]  # the scenario's webhook_events by status at the end
    usage: RunProcessUsage
    max_active: int
    group_seconds: list[float]  # duration_s of each partial sync the drain runs recorded


@dataclass(frozen=True)
class StoredEvent:
    received: float
    settled: float | None  # None: not done
    run_id: str | None


def queue_after(
    engine: sa.Engine, since: float, changed: set[tuple[str, int]]
) -> tuple[dict[tuple[str, int], StoredEvent], dict[str, int]]:
    """The events of the ``changed`` (account, ingredient) pairs stored since ``since``, and
    how many of them are in each status."""
    events = webhook_events
    query = sa.select(
        events.c.account,
        events.c.object_id,
        events.c.received_at,
        events.c.updated_at,
        events.c.settled_by_run,
        events.c.status,
    ).where(
        events.c.object == "ingredient", events.c.received_at >= datetime.fromtimestamp(since, UTC)
    )
    by_change: dict[tuple[str, int], StoredEvent] = {}
    statuses: dict[str, int] = {}
    with engine.connect() as conn:
        for account, object_id, received_at, updated_at, run_id, status in conn.execute(query):
            if (account, object_id) not in changed:
                continue
            settled = updated_at.timestamp() if status == "done" else None
            by_change[(account, object_id)] = StoredEvent(received_at.timestamp(), settled, run_id)
            statuses[status] = statuses.get(status, 0) + 1
    return by_change, statuses


def group_seconds(instance: dg.DagsterInstance, since: float) -> list[float]:
    """How long each partial sync of ingredients recorded since ``since`` took inside its
    drain run (lock, fetch, load, settle), from the materializations' metadata."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["poster", "ingredients"]), after_timestamp=since
        ),
        limit=10_000,  # the most Dagster returns at once; a 60 s window records fewer
    ).records
    durations = []
    for record in records:
        materialization = record.asset_materialization
        value = materialization.metadata.get("duration_s") if materialization else None
        if value is not None:
            durations.append(float(value.value))
    return durations


def many_restaurants(
    stack: Stack,
    instance: dg.DagsterInstance,
    duration: float,
    every: float,
    drain: float,
    rng: random.Random,
) -> ManyResult:
    """Drive the accounts' renames for ``duration`` s while polling for them, then wait up to
    ``drain`` s for the rest; run processes and the run queue are measured while the changes
    are sent."""
    changes = plan_changes(stack, duration, every, rng)
    print(
        f"{NAME}: {restaurants(len(stack.accounts))}, {len(changes)} changes over {duration:g} s",
        flush=True,
    )
    with (
        ThreadPoolExecutor(1, thread_name_prefix="driver") as driver,
        RunProcessMeter(stack.daemon_group) as meter,
        RunSampler(stack.dagster_home) as runs,
    ):
        began = time.time()
        driving = driver.submit(drive, stack.emulator_url, changes)
        while not driving.done():
            poll_visible(stack.warehouse, changes)
            time.sleep(MANY_POLL_S)
        driving.result()
        window = (began, time.time())
    deadline = time.monotonic() + drain
    while poll_visible(stack.warehouse, changes) and time.monotonic() < deadline:
        time.sleep(MANY_POLL_S)
    drained_in = time.time() - window[1]
    sent = {(c.account, c.ingredient_id) for c in changes}
    events, statuses = queue_after(stack.warehouse, window[0] - 1, sent)
    records = instance.get_run_records(
        dg.RunsFilter(created_after=datetime.fromtimestamp(window[0] - 1, UTC))
    )
    settled_by = {e.run_id for e in events.values() if e.run_id is not None}
    created = {
        r.dagster_run.run_id: r.create_timestamp.timestamp()
        for r in instance.get_run_records(dg.RunsFilter(run_ids=sorted(settled_by)))
    }
    launched = sum(
        1
        for r in records
        if r.dagster_run.tags.get(SENSOR_NAME_TAG) == SENSOR
        and window[0] <= r.create_timestamp.timestamp() <= window[1]
    )
    return ManyResult(
        changes=changes,
        window=window,
        drained_in=drained_in,
        drain=drain,
        stored={key: event.received for key, event in events.items()},
        settled={key: e.settled for key, e in events.items() if e.settled is not None},
        warm=sum(
            1
            for e in events.values()
            if e.run_id is not None and created.get(e.run_id, math.inf) < e.received
        ),
        launched=launched,
        statuses=statuses,
        usage=meter.usage,
        max_active=runs.max_active,
        group_seconds=group_seconds(instance, window[0]),
    )


def many_figures(result: ManyResult, smoke: bool) -> list[Figure]:
    """Per N: latency and its split, runs per minute, run processes' CPU and RSS, events lost."""
    label = restaurants(len({c.account for c in result.changes}))
    seen = [c for c in result.changes if c.visible is not None]
    totals = [c.visible - c.patched for c in seen if c.visible is not None]
    keyed = [((c.account, c.ingredient_id), c) for c in seen]
    stored = [(result.stored[k], c) for k, c in keyed if k in result.stored]
    settled = [(result.stored[k], result.settled[k], c) for k, c in keyed if k in result.settled]
    window = result.window[1] - result.window[0]
    per_minute = result.launched / (window / 60)
    usage = result.usage
    lost = len(result.changes) - len(seen)
    at_end = ", ".join(f"{s} {result.statuses.get(s, 0)}" for s in EVENT_STATUSES)
    drained = (
        f"all visible {result.drained_in:.0f} s after the last change"
        if not lost
        else f"deadline {result.drain:.0f} s after the last change"
    )
    return [
        Figure(NAME, f"{label}: PATCH → row visible, p50", median(totals), "s"),
        Figure(
            NAME,
            f"{label}: PATCH → row visible, p95",
            p95(totals),
            "s",
            f"≤ {P95_TARGET_S:g} s",
            at_most(P95_TARGET_S, smoke)(p95(totals)),
            f"{len(result.changes)} changes in {window:.0f} s "
            f"({len(result.changes) / window:.1f}/s); max {max(totals, default=math.nan):.2f} s",
        ),
        spread_figure(f"  {label}: PATCH → stored", [s - c.patched for s, c in stored]),
        spread_figure(
            f"  {label}: stored → settled (claim, fetch, load)", [d - s for s, d, _ in settled]
        ),
        spread_figure(f"  {label}: a group's partial sync inside the drain", result.group_seconds),
        spread_figure(
            f"  {label}: settled → row seen by the poll",
            [c.visible - d for _, d, c in settled if c.visible is not None],
        ),
        Figure(
            NAME,
            f"  {label}: events applied by a drain run already running",
            result.warm,
            "",
            reference=f"of {len(result.settled)} settled; the others waited for a sensor tick "
            "and a new run",
        ),
        Figure(
            NAME,
            f"{label}: runs launched by {SENSOR} per minute",
            per_minute,
            "/min",
            f"≤ {RUNS_PER_MINUTE_TARGET} whatever N",
            at_most(RUNS_PER_MINUTE_TARGET, smoke)(per_minute),
            f"{result.launched} runs in {window:.0f} s; queued or in progress at most "
            f"{result.max_active}",
        ),
        Figure(
            NAME,
            f"{label}: run processes, CPU",
            usage.cpu_seconds,
            "s",
            reference=f"{usage.cpu_seconds / window:.2f} cores on average over the window; "
            f"{usage.seen} run processes seen",
        ),
        Figure(
            NAME,
            f"{label}: run processes, peak RSS all at once",
            usage.peak_all_mb,
            "MB",
            reference=f"one run at most {usage.peak_one_mb:.0f} MB (with its log helpers); "
            f"{usage.most_at_once} at once at most",
        ),
        Figure(
            NAME,
            f"{label}: events lost (changes never visible)",
            lost,
            "",
            "0",
            at_most(0, smoke)(lost),
            f"{drained}; webhook_events then: {at_end}; "
            f"{len(result.changes) - len(result.stored)} changes never stored",
        ),
    ]


def one_stack(
    n: int,
    tmp: Path,
    args: Namespace,
    first: bool,
) -> list[Figure]:
    """A stack with ``n`` restaurants: the one-account part when ``n`` is 1, then the
    many-restaurant scenario."""
    smoke = args.smoke
    duration = args.duration or (SMOKE_DURATION_S if smoke else DURATION_S)
    drain = args.drain if args.drain is not None else SMOKE_DRAIN_S if smoke else DRAIN_S
    # A stack of one keeps the emulator's default data, as the one-account part always had.
    per_account = math.ceil(duration / args.every)
    sizes = None if n == 1 else {**SMALL_SIZES, "ingredients": per_account + 10}
    figures: list[Figure] = []
    with (
        real_stack(tmp / f"n{n}", bench_accounts(n), sizes, args.sensor_interval) as stack,
        dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance,
    ):
        if first:
            print(f"{NAME}: machine {machine_summary(stack.warehouse)}", flush=True)
        count = args.changes if args.changes is not None else SMOKE_CHANGES if smoke else CHANGES
        if n == 1 and count > 0:
            burst_size = args.burst if args.burst is not None else SMOKE_BURST if smoke else BURST
            spread = (
                args.spread if args.spread is not None else SMOKE_SPREAD_S if smoke else SPREAD_S
            )
            figures += one_account(stack, instance, count, burst_size, spread, smoke)
        wait_until(
            lambda: bool(sensor_ticks(instance, 0.0)), 120, f"a first {SENSOR} tick", step=0.5
        )
        result = many_restaurants(stack, instance, duration, args.every, drain, random.Random(n))
    return figures + many_figures(result, smoke)


def restaurant_counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--changes", type=int, default=None, help="Changes one at a time (0: no one-account part)."
    )
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
    parser.add_argument(
        "--restaurants",
        type=restaurant_counts,
        default=None,
        help="Accounts of each many-restaurant stack, comma-separated (default "
        f"{','.join(map(str, RESTAURANTS))}; smoke {','.join(map(str, SMOKE_RESTAURANTS))}); "
        "the one-account part runs in the stack of 1.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help=f"Seconds of changes per stack (default {DURATION_S:g}; smoke {SMOKE_DURATION_S:g}).",
    )
    parser.add_argument(
        "--every", type=float, default=EVERY_S, help="Seconds between an account's changes."
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=None,
        help="Longest wait after the last change for the rest to become visible, s "
        f"(default {DRAIN_S:g}; smoke {SMOKE_DRAIN_S:g}).",
    )
    args = parser.parse_args(argv)
    counts = args.restaurants or (SMOKE_RESTAURANTS if args.smoke else RESTAURANTS)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        for i, n in enumerate(counts):
            figures += one_stack(n, Path(tmp), args, first=i == 0)
    instance_kind = "repo dagster.yaml"
    if args.sensor_interval is not None:
        instance_kind += f", webhook sensor interval {args.sensor_interval} s"
    print_figures(f"{NAME} (real processes, {instance_kind})", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
