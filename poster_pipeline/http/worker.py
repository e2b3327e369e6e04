"""One worker process of ``poster-pipeline serve --workers N``: the app, and an exit with its
supervisor.

uvicorn's supervisor binds the port and hands the socket to workers it spawns. Stopped
normally, it stops them; killed with SIGKILL (the OOM killer, ``kill -9``, a crashed
container runtime), it cannot, and the orphaned workers would go on holding the port, so a
restarted ``serve`` fails with "address already in use". Each worker therefore watches its
supervisor and shuts down gracefully, as on SIGTERM, as soon as it is gone: in-flight hooks
are still stored and answered, and the port is free again within a second.

The watch needs no polling: a process started by :mod:`multiprocessing` (uvicorn uses its
``spawn`` context) holds the read end of a pipe whose write end only the parent holds, and
that pipe reports end-of-file the moment the parent exits, however it dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess

from starlette.applications import Starlette

from poster_pipeline.http.app import create_app

__all__ = ["create_worker_app", "exit_with_parent"]

log = logging.getLogger(__name__)


def _shut_down_when_gone(parent: BaseProcess) -> None:
    parent.join()  # returns once the parent has exited
    log.warning("the serve process (pid %s) is gone: worker %s shuts down", parent.pid, os.getpid())
    # uvicorn handles SIGTERM as a graceful shutdown: it closes the listening socket, lets
    # in-flight requests finish and exits.
    os.kill(os.getpid(), signal.SIGTERM)


def exit_with_parent() -> bool:
    """Send this process SIGTERM once the process that spawned it exits; ``False`` (and no
    watch) in a process not started by :mod:`multiprocessing`."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    threading.Thread(
        target=_shut_down_when_gone, args=(parent,), name="parent-watch", daemon=True
    ).start()
    return True


def create_worker_app() -> Starlette:
    """uvicorn's app factory in each worker: the receiver configured from the environment,
    in a process that ends with its supervisor."""
    app = create_app()
    exit_with_parent()
    return app
