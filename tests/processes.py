"""Real processes for end-to-end tests: start, wait until they answer, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the project's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTER_", "DAGSTER_"))}
    return {**env, **extra}


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None):
    """Start ``argv`` (a console script of this virtualenv) in its own process group."""
    handle = log.open("w")
    return subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]],
        env=env,
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.2):
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=1).ok
        except requests.RequestException:
            return False

    return check


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, parent pid)`` of a live process from /proc, or ``None`` once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren…), found through /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie (exited, not yet reaped by an init that may
    never reap it) holds no socket and does not count."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"
