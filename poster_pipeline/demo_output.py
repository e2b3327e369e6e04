"""The demo's view of ``dagster dev``'s output: passed through while the demo runs, held back
once Ctrl-C was pressed.

Dagster's daemon does not wait for a sensor tick in flight when it is told to stop: a tick cut
short (smart sync evaluates right after start, and about once a minute) logs the code location
as missing, with two tracebacks, after the user asked the demo to stop. Nothing is lost (the
next start evaluates again), so the demo says so in one line instead of printing them;
``poster-pipeline -v demo`` passes everything through.
"""

from __future__ import annotations

import sys
import threading
from typing import IO

__all__ = ["StoppingOutput"]


class StoppingOutput:
    """Copies ``stream`` (a child's stdout and stderr) to this process's stdout, line by
    line, on a thread, until ``stopping`` is set; after that it only counts the errors."""

    def __init__(self, stream: IO[bytes], stopping: threading.Event) -> None:
        self._stream = stream
        self._stopping = stopping
        self.held_back_errors = 0
        self._thread = threading.Thread(target=self._copy, name="dagster-output", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        out = sys.stdout.buffer
        for line in iter(self._stream.readline, b""):
            if not self._stopping.is_set():
                out.write(line)
                out.flush()
            elif b"ERROR" in line:
                self.held_back_errors += 1

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the child's output to end (it has exited)."""
        self._thread.join(timeout)

    def note(self) -> str | None:
        """The line that stands for what was held back, or None."""
        if not self.held_back_errors:
            return None
        return (
            f"Dagster logged {self.held_back_errors} error(s) while stopping (a sensor tick cut "
            "short by the shutdown; nothing is lost); `poster-pipeline -v demo` shows them"
        )
