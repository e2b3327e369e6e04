"""The pieces the benchmarks start: a warehouse database of their own, the emulator and the
receiver as real processes, and CPU accounting of processes from ``/proc``.

Process handling (start in a session of its own, stop by process group, poll with a deadline)
is shared with the end-to-end tests (``tests/processes.py``); the benchmark database is the
test helper's ``_bench`` sibling database, migrated and emptied at each use.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
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
    "RunProcessMeter",
    "RunProcessUsage",
    "Warehouse",
    "bench_warehouse",
    "far_from_three_am",
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


def bench_warehouse(
    *, connect_account: bool = True, accounts: Sequence[EmulatorAccount] = (ACCOUNT,)
) -> Warehouse:
    """Reset the ``_bench`` database (drop everything, migrate) and connect ``accounts`` (the
    demo account unless told otherwise), so the receiver stores their hooks as pending."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_engine("postgresql", Path(tmp), DB_SUFFIX).dispose()
    warehouse = Warehouse(postgres_url(DB_SUFFIX), Fernet.generate_key().decode())
    if connect_account:
        engine = warehouse.engine()
        store = AccountStore(engine, TokenCipher(warehouse.token_key))
        for account in accounts:
            store.add(
                account.name,
                account.token,
                now=datetime.now(UTC),
                account_number=str(account.number),
            )
        engine.dispose()
    return warehouse


@contextmanager
def running(processes: list[subprocess.Popen]) -> Iterator[list[subprocess.Popen]]:
    """Stop every process started into ``processes`` on the way out, newest first, each with
    its whole process group: the daemon's code server outlives the daemon by a moment and,
    left alone, recreates its instance folders after the temporary directory is gone."""
    try:
        yield processes
    finally:
        for process in reversed(processes):
            stop(process)
            _wait_group_gone(process.pid)


def _group_members(group: int) -> list[int]:
    """Live (not zombie) processes of process group ``group``."""
    members = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None and int(fields[2]) == group and fields[0] != "Z":
            members.append(pid)
    return members


def _wait_group_gone(group: int, timeout: float = 15) -> None:
    """Wait for the group that ``stop`` sent SIGTERM to; SIGKILL what is left at the deadline."""
    deadline = time.monotonic() + timeout
    while _group_members(group):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            return
        time.sleep(0.1)


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
    sizes: Mapping[str, int] | None = None,
    webhook_url: str | None = None,
    retry_delays: str = "0.5,1,2",
    accounts: Sequence[EmulatorAccount] = (),
) -> EmulatorProcess:
    """``poster-pipeline emulator`` in a process of its own, so its memory and CPU are not
    the measured process's; returns once it answers. ``accounts`` empty: the demo account;
    ``sizes`` are per account."""
    port = free_port()
    argv = ["poster-pipeline", "emulator", "--port", str(port), "--seed", str(SEED)]
    for account in accounts:
        argv += ["--account", f"{account.name}:{account.number}:{account.token}"]
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


# -- Dagster run processes ------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode("utf-8", "replace")
        )
    except OSError:
        return ""


def _rss(pid: int) -> int:
    """Resident bytes of a live process (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_with_children(pid: int) -> int:
    """Clock ticks of ``pid`` plus those of its children that it has reaped (cutime, cstime)."""
    fields = _stat_fields(pid)
    return 0 if fields is None else sum(int(f) for f in fields[11:15])


def _run_trees(group: int) -> tuple[list[int], dict[int, list[int]]]:
    """The code servers in process group ``group`` (the daemon's) and each run process with
    its descendants. The daemon's gRPC code server (``dagster api grpc``) starts every run as
    a ``multiprocessing`` spawn child; the run starts log-capture helpers (``tail -F``,
    ``watch_orphans.py``), which count as part of it."""
    parent: dict[int, int] = {}
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None and int(fields[2]) == group:
            parent[pid] = int(fields[1])
    servers = [pid for pid in parent if "dagster api grpc" in _cmdline(pid)]
    trees = {
        pid: [pid]
        for pid, ppid in parent.items()
        if ppid in servers and "spawn_main" in _cmdline(pid)
    }
    for pid in parent:
        ancestor = parent[pid]
        while ancestor in parent:
            if ancestor in trees:
                trees[ancestor].append(pid)
                break
            ancestor = parent[ancestor]
    return servers, trees


@dataclass(frozen=True)
class RunProcessUsage:
    cpu_seconds: float
    peak_one_mb: float  # the largest run (process and helpers) at any sample
    peak_all_mb: float  # all runs alive at one sample, at most
    most_at_once: int
    seen: int  # distinct run processes sampled


class RunProcessMeter:
    """CPU seconds and peak RSS of Dagster's run processes while the meter runs.

    Run processes live ~2 s, so sampling each one's CPU would miss the end of most of them.
    CPU is therefore counted exactly: at start and at stop, each live run tree's own ticks
    plus the code server's ``cutime``/``cstime`` (the ticks of the runs it has already reaped,
    their helpers included); the difference is what the runs used in between. RSS can only
    be sampled (every ``every`` s): short peaks between samples are missed.
    """

    def __init__(self, group: int, every: float = 0.2) -> None:
        self._group, self._every = group, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-processes", daemon=True)
        self._peak_one = self._peak_all = self._most = 0
        self._seen: set[int] = set()

    def _ticks(self) -> int:
        servers, trees = _run_trees(self._group)
        pids = [*servers, *(pid for tree in trees.values() for pid in tree)]
        return sum(_cpu_with_children(pid) for pid in pids)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            _, trees = _run_trees(self._group)
            sizes = [sum(_rss(pid) for pid in tree) for tree in trees.values()]
            self._seen.update(trees)
            self._most = max(self._most, len(trees))
            self._peak_one = max(self._peak_one, *sizes, 0)
            self._peak_all = max(self._peak_all, sum(sizes))

    def __enter__(self) -> RunProcessMeter:
        self._begin = self._ticks()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.usage = RunProcessUsage(
            cpu_seconds=(self._ticks() - self._begin) / _TICKS,
            peak_one_mb=self._peak_one / 1e6,
            peak_all_mb=self._peak_all / 1e6,
            most_at_once=self._most,
            seen=len(self._seen),
        )


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


def far_from_three_am() -> str:
    """A fixed-offset time zone where it is now about 15:00, so that the nightly schedule
    (03:00 local, with a 6-hour catch-up) launches nothing during the measurement."""
    offset = (15 - datetime.now(UTC).hour) % 24
    if offset > 12:
        offset -= 24
    # Etc/GMT's sign is POSIX's, the reverse of ISO's: Etc/GMT-5 is UTC+5.
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
