"""The pieces the benchmarks start: a warehouse database of their own, the emulator and the
receiver as real processes, and CPU accounting of processes from ``/proc``.

Process handling (start in a session of its own, stop by process group, poll with a deadline)
is shared with the end-to-end tests (``tests/processes.py``); the benchmark database is the
test helper's ``_bench`` sibling database, migrated and emptied at each use.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.emulator import EmulatorAccount
from poster_pipeline.warehouse.accounts import AccountStore, TokenCipher
from poster_pipeline.warehouse.engine import create_warehouse_engine
from tests.databases import fresh_engine, postgres_url
from tests.processes import answers, clean_env, free_port, start, stop, wait_until

__all__ = [
    "ACCOUNT",
    "DB_SUFFIX",
    "SECRET",
    "SEED",
    "CpuMeter",
    "Warehouse",
    "bench_warehouse",
    "machine_summary",
    "receiver_env",
    "running",
    "start_emulator",
    "start_receiver",
]

SEED = 42
#: The emulator's demo account (number 813932, token derived from the seed).
ACCOUNT = EmulatorAccount.derive("api-demo", SEED, 813932)
DB_SUFFIX = "_bench"
SECRET = "bench-application-secret"


@dataclass(frozen=True)
class Warehouse:
    """A migrated, empty benchmark database with the demo account connected."""

    url: str
    token_key: str

    def engine(self) -> sa.Engine:
        return create_warehouse_engine(self.url)


def bench_warehouse(*, connect_account: bool = True) -> Warehouse:
    """Reset the ``_bench`` database (drop everything, migrate) and add the demo account."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_engine("postgresql", Path(tmp), DB_SUFFIX).dispose()
    warehouse = Warehouse(postgres_url(DB_SUFFIX), Fernet.generate_key().decode())
    if connect_account:
        engine = warehouse.engine()
        AccountStore(engine, TokenCipher(warehouse.token_key)).add(
            ACCOUNT.name, ACCOUNT.token, now=datetime.now(UTC)
        )
        engine.dispose()
    return warehouse


@contextmanager
def running(processes: list[subprocess.Popen]) -> Iterator[list[subprocess.Popen]]:
    """Stop every process started into ``processes`` on the way out, newest first."""
    try:
        yield processes
    finally:
        for process in reversed(processes):
            stop(process)


@dataclass(frozen=True)
class EmulatorProcess:
    process: subprocess.Popen
    url: str

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def start_emulator(
    logs: Path,
    *,
    sizes: dict[str, int] | None = None,
    webhook_url: str | None = None,
    retry_delays: str = "0.5,1,2",
) -> EmulatorProcess:
    """``poster-pipeline emulator`` in a process of its own, so its memory and CPU are not
    the measured process's; returns once it answers."""
    port = free_port()
    argv = ["poster-pipeline", "emulator", "--port", str(port), "--seed", str(SEED)]
    for entity, size in (sizes or {}).items():
        argv += [f"--{entity.replace('_', '-')}", str(size)]
    if webhook_url:
        argv += ["--webhook-url", webhook_url, "--application-secret", SECRET]
        argv += ["--webhook-retry-delays", retry_delays]
    process = start(argv, clean_env(), logs / "emulator.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(answers(f"{url}/control/health"), 120, "the emulator")
    except AssertionError:
        stop(process)
        raise
    return EmulatorProcess(process, url)


@dataclass(frozen=True)
class ReceiverProcess:
    process: subprocess.Popen
    url: str

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/poster/webhooks"


def start_receiver(
    logs: Path, env: dict[str, str], *, workers: int = 1, port: int | None = None
) -> ReceiverProcess:
    """``poster-pipeline serve`` (no access log: one line per request would be measured too);
    returns once ``/health/ready`` answers."""
    port = port or free_port()
    argv = ["poster-pipeline", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    process = start(argv, env, logs / f"serve-{port}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(answers(f"{url}/health/ready"), 60, "the receiver")
    except AssertionError:
        stop(process)
        raise
    return ReceiverProcess(process, url)


def receiver_env(warehouse: Warehouse, **extra: str) -> dict[str, str]:
    return clean_env(
        POSTER_DATABASE_URL=warehouse.url,
        POSTER_APPLICATION_SECRET=SECRET,
        POSTER_TOKEN_KEY=warehouse.token_key,
        **extra,
    )


# -- CPU accounting ---------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command may contain spaces and parentheses: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def _pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cpu_of(select: Sequence[int] | None, comm: str | None, group: int | None) -> float:
    """CPU seconds (user + system) of the selected live processes."""
    total = 0
    for pid in select if select is not None else _pids():
        fields = _stat_fields(pid)
        if fields is None:
            continue
        if group is not None and int(fields[2]) != group:  # field 5 of stat: pgrp
            continue
        if comm is not None and _comm(pid) != comm:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


class CpuMeter:
    """CPU used between :meth:`start` and :meth:`stop`, as cores busy on average: by one
    process group (the receiver and its workers), by all ``postgres`` processes (the other
    sessions' databases included: this machine is shared), and by the whole machine.

    Processes that exit in between are not counted, so measure groups that stay up.
    """

    def __init__(self, group: int) -> None:
        self.group = group

    def _sample(self) -> tuple[float, float, float, float]:
        busy, total = _machine_busy()
        return (
            _cpu_of(None, None, self.group),
            _cpu_of(None, "postgres", None),
            busy,
            total,
        )

    def start(self) -> None:
        self._begin = self._sample()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        group, postgres, busy, total = (e - b for e, b in zip(end, self._begin, strict=True))
        cores = os.cpu_count() or 1
        wall = total / cores
        return {
            "group_cores": group / wall,
            "postgres_cores": postgres / wall,
            "machine_cores": busy / wall,
            "cores": cores,
        }


# -- the machine --------------------------------------------------------------------------------


def machine_summary(engine: sa.Engine | None = None) -> dict[str, str]:
    """What RESULTS.md records about the machine."""
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    import dagster

    summary = {
        "cores": str(os.cpu_count()),
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "load average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    if engine is not None:
        with engine.connect() as conn:
            summary["postgresql"] = conn.execute(sa.text("SHOW server_version")).scalar_one()
    return summary
