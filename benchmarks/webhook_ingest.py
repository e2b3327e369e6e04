"""Benchmark 2: webhook ingest: signed webhooks into ``webhook_events`` through the receiver.

``poster-pipeline serve`` (uvicorn, 1 and then 2 worker processes, no access log) runs against
the benchmark warehouse with the demo account connected, so every hook is verified, classified
and stored as a ``pending`` event: one prepared ``INSERT … ON CONFLICT … RETURNING`` in
autocommit per request, committed before the 200. The load comes from wrk (C, so the load
generator does not eat the server's CPU; ``apt-get install wrk``) with
``benchmarks/webhooks.lua``, which cycles through pre-generated, distinct, pre-signed bodies,
so each 2xx answer must be exactly one new row.

Per worker count, two phases on loopback:

- **fixed rate**: 1,000 req/s offered for 60 s (smoke: 2 s), open-loop in the manner of wrk2
  (see the Lua script): the target is ≥ 1,000 req/s answered at p99 ≤ 20 ms;
- **saturation**: as fast as 32 connections go (closed loop) for 20 s (smoke: 1 s): the
  headroom; its latencies include queueing and are not held to the target.

After each phase the rows in ``webhook_events`` must equal the 2xx answers (every request is
answered before wrk stops): otherwise the benchmark is broken and exits non-zero. CPU use of
the receiver processes, of all ``postgres`` processes and of the machine during the phase is
printed, to show what limits the rate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.figures import (
    BenchmarkBroken,
    Figure,
    at_least,
    at_most,
    common_arguments,
    print_figures,
    write_figures,
)
from benchmarks.stack import (
    ACCOUNT,
    SECRET,
    CpuMeter,
    Warehouse,
    bench_warehouse,
    machine_summary,
    receiver_env,
    running,
    start_receiver,
)
from poster_pipeline.poster.webhooks import sign
from poster_pipeline.warehouse.schema import webhook_events

NAME = "webhook ingest"
SCRIPT = Path(__file__).with_name("webhooks.lua")
RATE_TARGET = 1_000
P99_TARGET_MS = 20.0
DRAIN_SECONDS = 3  # wrk keeps running this long after the last send, for the last answers
SATURATION_CEILING = 12_000  # req/s the bodies of a saturation phase are generated for


@dataclass(frozen=True)
class Phase:
    """One wrk run: ``rate`` 0 is a closed loop (as fast as ``connections`` allow)."""

    name: str
    rate: int
    seconds: int
    connections: int

    def bodies_needed(self) -> int:
        per_second = self.rate or SATURATION_CEILING
        return per_second * self.seconds + self.connections + 1_000


def phases(smoke: bool) -> list[Phase]:
    if smoke:
        return [Phase("fixed rate", RATE_TARGET, 2, 50), Phase("saturation", 0, 1, 32)]
    return [Phase("fixed rate", RATE_TARGET, 60, 50), Phase("saturation", 0, 20, 32)]


def write_bodies(path: Path, count: int, first_time: int) -> None:
    """``count`` distinct webhooks (object ids and times differ), signed like Poster's."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            fields = {
                "account": ACCOUNT.name,
                "object": "ingredient",
                "object_id": 1 + n % 100_000,
                "action": "changed",
                "time": str(first_time + n),
            }
            verify = sign(**fields, secret=SECRET)
            body = {**fields, "account_number": str(ACCOUNT.number), "verify": verify}
            out.write(json.dumps(body, separators=(",", ":")) + "\n")


def run_wrk(url: str, phase: Phase, bodies: Path, meter: CpuMeter) -> dict[str, Any]:
    """wrk with the Lua script; returns the script's WRK_RESULT counters and the CPU used
    during the load window (the drain after it is left out)."""
    argv = ["wrk", "-t1", f"-c{phase.connections}", f"-d{phase.seconds + DRAIN_SECONDS}s"]
    argv += ["-T5s", "--latency", "-s", str(SCRIPT), url]
    env = {
        **os.environ,
        "BODIES": str(bodies),
        "RATE": str(phase.rate),
        "LOAD_SECONDS": str(phase.seconds),
        "THREADS": "1",
    }
    wrk = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    meter.start()
    time.sleep(phase.seconds)
    cpu = meter.stop()
    stdout, stderr = wrk.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if wrk.returncode != 0 or not lines:
        raise BenchmarkBroken(f"wrk failed ({wrk.returncode}):\n{stdout}\n{stderr}")
    return {**json.loads(lines[-1].removeprefix("WRK_RESULT ")), "cpu": cpu}


def stored_events(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_events.c.status, sa.func.count()).group_by(webhook_events.c.status)
        ).all()
    return {status: int(count) for status, count in rows}


def empty_queue(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE webhook_events"))


def check_stored(result: dict[str, Any], stored: dict[str, int]) -> None:
    """Every 2xx answer is one stored row, and nothing else was stored."""
    rows = sum(stored.values())
    in_flight = result["sent"] - result["ok"] - result["failed"]
    if rows != result["ok"]:
        raise BenchmarkBroken(
            f"{rows} rows stored for {result['ok']} 2xx answers "
            f"({in_flight} requests unanswered when wrk stopped, "
            f"{result['exhausted']} repeated bodies)"
        )
    if set(stored) - {"pending"}:
        raise BenchmarkBroken(f"events stored with another status than pending: {stored}")


def measure_phase(
    url: str, phase: Phase, receiver_group: int, engine: sa.Engine, tmp: Path, first_time: int
) -> dict[str, Any]:
    bodies = tmp / "bodies.jsonl"
    write_bodies(bodies, phase.bodies_needed(), first_time)
    empty_queue(engine)
    result = run_wrk(url, phase, bodies, CpuMeter(receiver_group))
    stored = stored_events(engine)
    check_stored(result, stored)
    return {**result, "stored": sum(stored.values())}


def phase_figures(workers: int, phase: Phase, r: dict[str, Any], smoke: bool) -> list[Figure]:
    label = f"{workers} worker{'s' if workers > 1 else ''}, {phase.name}"
    # Answers over the span of the sends (plus one slot): exactly the offered rate when every
    # send left on schedule, less when the server fell behind and the sends spread out.
    span = r["send_span_ms"] / 1000 + (1 / phase.rate if phase.rate else 0)
    rate = r["ok"] / span if span > 0 else float("nan")
    offered = f"{phase.rate:,} req/s offered" if phase.rate else "closed loop"
    fixed = phase.rate > 0
    cpu = r["cpu"]
    errors = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    figures = [
        Figure(
            NAME,
            f"{label}: answered 2xx",
            rate,
            "req/s",
            f"≥ {RATE_TARGET:,} req/s" if fixed else "",
            at_least(RATE_TARGET, smoke)(rate) if fixed else "",
            f"{offered}, {phase.connections} connections, {phase.seconds} s",
        ),
        Figure(NAME, f"{label}: p50 latency", r["p50_us"] / 1000, "ms"),
        Figure(
            NAME,
            f"{label}: p99 latency",
            r["p99_us"] / 1000,
            "ms",
            f"≤ {P99_TARGET_MS:g} ms" if fixed else "",
            at_most(P99_TARGET_MS, smoke)(r["p99_us"] / 1000) if fixed else "",
            f"p99.9 {r['p999_us'] / 1000:.1f} ms, max {r['max_us'] / 1000:.1f} ms",
        ),
        Figure(
            NAME,
            f"{label}: non-2xx answers",
            r["failed"],
            "",
            "0",
            at_most(0, smoke)(r["failed"]),
            f"socket errors {errors}; statuses {r['statuses'] or '{}'}",
        ),
        Figure(
            NAME,
            f"{label}: rows stored == 2xx answers",
            f"{r['stored']:,} == {r['ok']:,}",
            reference=f"{r['sent']:,} sent, all answered before wrk stopped",
        ),
        Figure(
            NAME,
            f"{label}: CPU cores busy (machine)",
            cpu["machine_cores"],
            f"of {cpu['cores']}",
            reference=f"receiver {cpu['group_cores']:.2f}, postgres {cpu['postgres_cores']:.2f}",
        ),
    ]
    if fixed:
        figures.append(
            Figure(
                NAME,
                f"{label}: sends behind schedule",
                r["late"],
                "",
                reference=f"max lag {r['max_lag_ms']:.1f} ms (coordinated-omission check)",
            )
        )
    return figures


def measure_workers(
    workers: int, warehouse: Warehouse, tmp: Path, smoke: bool, first_time: int
) -> list[Figure]:
    engine = warehouse.engine()
    figures: list[Figure] = []
    with running([]) as processes:
        receiver = start_receiver(tmp, receiver_env(warehouse), workers=workers)
        processes.append(receiver.process)
        for n, phase in enumerate(phases(smoke)):
            time.sleep(1)  # let the previous phase's connections close
            start = first_time + n * 10_000_000
            result = measure_phase(
                receiver.webhook_url, phase, receiver.process.pid, engine, tmp, start
            )
            figures += phase_figures(workers, phase, result, smoke)
    engine.dispose()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="uvicorn worker counts to measure, e.g. 1,2",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise BenchmarkBroken("wrk is not installed: apt-get install -y wrk")
    warehouse = bench_warehouse()
    engine = warehouse.engine()
    print(f"{NAME}: machine {machine_summary(engine)}")
    engine.dispose()
    figures: list[Figure] = []
    first_time = int(time.time())
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for n, workers in enumerate(args.workers):
            start = first_time + n * 100_000_000
            figures += measure_workers(workers, warehouse, Path(tmp), args.smoke, start)
    print_figures(f"{NAME} (wrk on loopback, signed distinct bodies)", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
