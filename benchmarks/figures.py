"""Measured figures, their targets, and how they are printed and handed to ``run_all``.

A missed target is printed ``MISS`` and never fails a benchmark: these machines are shared
and noisy, so a target is a statement to read, not a gate. A benchmark fails (non-zero exit)
only when it is broken: an exception, or an invariant such as "stored events == 2xx answers"
that does not hold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "BenchmarkBroken",
    "Figure",
    "at_least",
    "at_most",
    "common_arguments",
    "median",
    "print_figures",
    "quiet_warnings",
    "write_figures",
]


class BenchmarkBroken(AssertionError):
    """An invariant of the measurement failed: the figures cannot be trusted."""


@dataclass(frozen=True)
class Figure:
    """One printed figure. ``verdict`` is PASS, MISS, or "" (no target, or a smoke run)."""

    benchmark: str
    name: str
    value: float | int | str
    unit: str = ""
    target: str = ""
    verdict: str = ""
    reference: str = ""

    def shown(self) -> str:
        value = self.value
        if isinstance(value, float):
            text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        return f"{text} {self.unit}".strip()


def _verdict(ok: bool, smoke: bool) -> str:
    if smoke:
        return "(smoke)"
    return "PASS" if ok else "MISS"


def at_most(limit: float, smoke: bool) -> Callable[[float], str]:
    return lambda value: _verdict(value <= limit, smoke)


def at_least(limit: float, smoke: bool) -> Callable[[float], str]:
    return lambda value: _verdict(value >= limit, smoke)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    """A plain-text table: figure, value, target, verdict, reference."""
    rows = [("figure", "value", "target", "", "reference")]
    rows += [(f.name, f.shown(), f.target, f.verdict, f.reference) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print(f"\n== {title}")
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        print("  ".join([*cells, row[4]]).rstrip())


def write_figures(path: Path | None, figures: Sequence[Figure]) -> None:
    """Append the figures as JSON lines (``run_all`` collects them for its summary)."""
    if path is None:
        return
    with path.open("a", encoding="utf-8") as out:
        for figure in figures:
            out.write(json.dumps(asdict(figure), ensure_ascii=False) + "\n")


def quiet_warnings() -> None:
    """Keep the printed figures readable: Dagster's beta and deprecation warnings (about the
    project's definitions, not the measurement) are not shown."""
    warnings.simplefilter("ignore")


def common_arguments(description: str) -> argparse.ArgumentParser:
    quiet_warnings()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--smoke", action="store_true", help="A tiny run that exercises every code path."
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="Append the figures to this file (JSON lines)."
    )
    return parser
