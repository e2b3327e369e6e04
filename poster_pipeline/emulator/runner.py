"""Running the emulator in a background thread of the current process (tests, the demo)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn

from poster_pipeline.emulator.app import build_app
from poster_pipeline.emulator.config import EmulatorConfig

__all__ = ["RunningEmulator", "start_in_thread"]

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


@dataclass
class RunningEmulator:
    """An emulator serving on ``url``; ``api_url`` is what a Poster client takes as base URL.

    Stop it with :meth:`stop` or by leaving a ``with`` block.
    """

    url: str
    api_url: str
    config: EmulatorConfig
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _socket: socket.socket = field(repr=False)

    @property
    def control_url(self) -> str:
        return f"{self.url}/control"

    def stop(self) -> None:
        """Ask the server to exit and wait for it; safe to call twice."""
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._socket.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> RunningEmulator:
    """Serve ``config`` on ``host:port`` (0 = a free port) from a daemon thread.

    Returns once the server accepts connections. The socket is bound here rather than by
    uvicorn so that the port is known before the server starts and port 0 works.
    """
    app = build_app(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            # A `hang` fault holds a request for minutes; stopping must not wait for it.
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="poster-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the Poster emulator did not start on {host}:{bound_port}")
        time.sleep(0.01)
    netloc = f"[{host}]" if ":" in host else host
    url = f"http://{netloc}:{bound_port}"
    return RunningEmulator(url, f"{url}/api", config, server, thread, sock)
