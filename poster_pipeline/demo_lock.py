"""One running demo per data folder, and a way for another demo command to find it.

The demo keeps its warehouse (SQLite by default), its token key and its Dagster home in the
data folder. Two demos on one folder would each feed the warehouse from their own emulator,
whose data drift apart as soon as one changes, and would share one Dagster instance. So the
running demo holds an exclusive lock (``flock``) on ``demo.lock`` in the folder, released by
the kernel however the process ends, and writes next to it what another command needs to
say what to do: its pid, its Dagster UI and a fingerprint of its warehouse URL (a hash: the URL
may hold a password).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["DemoRunning", "RunningDemo", "demo_lock", "running_demo", "warehouse_fingerprint"]

LOCK_FILE = "demo.lock"


def warehouse_fingerprint(warehouse_url: str) -> str:
    """Compares two warehouse URLs without writing either down."""
    return hashlib.sha256(warehouse_url.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunningDemo:
    """What the demo holding a data folder's lock wrote about itself (empty while it starts)."""

    pid: int | None = None
    ui_url: str | None = None
    warehouse: str | None = None

    def describe(self) -> str:
        parts = [f"pid {self.pid}" if self.pid else None, self.ui_url]
        details = ", ".join(part for part in parts if part)
        return (
            f"a demo is running from this data folder ({details})"
            if details
            else ("a demo is running from this data folder")
        )


class DemoRunning(Exception):
    """Another demo holds the data folder."""

    def __init__(self, running: RunningDemo) -> None:
        super().__init__(running.describe())
        self.running = running


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read(path: Path) -> RunningDemo:
    try:
        fields = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return RunningDemo()
    if not isinstance(fields, dict):
        return RunningDemo()
    pid, ui_url, warehouse = fields.get("pid"), fields.get("ui_url"), fields.get("warehouse")
    return RunningDemo(
        pid if isinstance(pid, int) else None,
        ui_url if isinstance(ui_url, str) else None,
        warehouse if isinstance(warehouse, str) else None,
    )


def running_demo(data_dir: Path) -> RunningDemo | None:
    """The demo running from ``data_dir``, or ``None`` when none is."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return None
    with path.open("r", encoding="utf-8") as handle:
        if _try_lock(handle):
            return None  # closing the file releases the lock
    return _read(path)


@contextlib.contextmanager
def demo_lock(data_dir: Path, *, ui_url: str, warehouse_url: str) -> Iterator[None]:
    """Hold ``data_dir`` for this demo; :class:`DemoRunning` when another demo holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    # "a": open without truncating what the holder wrote, should the lock be taken.
    with path.open("a", encoding="utf-8") as handle:
        if not _try_lock(handle):
            raise DemoRunning(_read(path))
        record = {
            "pid": os.getpid(),
            "ui_url": ui_url,
            "warehouse": warehouse_fingerprint(warehouse_url),
        }
        handle.truncate(0)
        handle.write(json.dumps(record))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
