"""Run every benchmark in order and print all figures next to their targets and references.

    python -m benchmarks.run_all            # the full run (about 30 minutes on 2 cores)
    python -m benchmarks.run_all --smoke    # a tiny run (under 5 minutes) that CI keeps working

Each benchmark runs as its own process (``python -m benchmarks.<name>``) and appends its figures
to a JSON-lines file; the summary at the end is read from it. The exit status is non-zero only
when a benchmark is broken (it raised, or an invariant such as stored == acknowledged failed),
never for a missed target: missed targets are printed MISS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.figures import Figure, common_arguments, print_figures

BENCHMARKS = (
    "full_sync",
    "webhook_ingest",
    "webhook_latency",
    "api_economy",
    "dashboard",
    "dagster_storage",
    "stock_sync",
)


def run(name: str, smoke: bool, figures_file: Path) -> tuple[bool, float]:
    """One benchmark, its output streamed; (succeeded, seconds)."""
    argv = [sys.executable, "-m", f"benchmarks.{name}", "--json", str(figures_file)]
    if smoke:
        argv.append("--smoke")
    print(f"\n### {' '.join(['python', *argv[1:]])}", flush=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    started = time.monotonic()
    done = subprocess.run(argv, env=env, check=False)
    return done.returncode == 0, time.monotonic() - started


def read_figures(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line]


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--only",
        type=lambda s: s.split(","),
        default=list(BENCHMARKS),
        help=f"Comma-separated subset of {', '.join(BENCHMARKS)}.",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    failed: list[str] = []
    timings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        figures_file = args.json or Path(tmp) / "figures.jsonl"
        for name in (b for b in BENCHMARKS if b in args.only):
            ok, seconds = run(name, args.smoke, figures_file)
            timings.append(f"{name} {seconds:.0f} s{'' if ok else ' (BROKEN)'}")
            if not ok:
                failed.append(name)
        figures = read_figures(figures_file)
    for benchmark in dict.fromkeys(f.benchmark for f in figures):
        print_figures(benchmark, [f for f in figures if f.benchmark == benchmark])
    missed = [f for f in figures if f.verdict == "MISS"]
    print(f"\nran {', '.join(timings)}")
    print(
        f"{len(figures)} figures; targets missed: {len(missed)}"
        + (" (" + "; ".join(f"{f.benchmark}: {f.name}" for f in missed) + ")" if missed else "")
    )
    if failed:
        print(f"BROKEN: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
