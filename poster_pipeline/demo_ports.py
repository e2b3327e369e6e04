"""The demo's ports: the usual ones when they are free, other free ones when they are not.

A newcomer starting a second demo, or a demo beside something else on port 3000, should get
a working demo and a line saying which ports it took, not an "address already in use"
traceback. A port asked for explicitly is different: the user meant it, so a taken one is an
error naming the option to change.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

__all__ = [
    "DAGSTER_UI_PORT",
    "PortChoice",
    "PortTaken",
    "choose_port",
    "free_port",
    "port_is_free",
]

#: ``dagster dev``'s usual port.
DAGSTER_UI_PORT = 3000


class PortTaken(Exception):
    """A port given explicitly is in use; the message names the option that chooses another."""


@dataclass(frozen=True)
class PortChoice:
    """The port to use; ``note`` says why it is not the usual one (``None`` when it is)."""

    port: int
    note: str | None = None


def _bind(host: str, port: int) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn and Dagster's webserver bind: a port left in TIME_WAIT by a demo that
        # just stopped is free for them, so it is free here too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (another may take it meanwhile)."""
    try:
        _bind(host, port)
    except OSError:
        return False
    return True


def free_port(host: str) -> int:
    """A port the system considers free on ``host`` (from its ephemeral range)."""
    return _bind(host, 0)


def choose_port(
    host: str, requested: int | None, *, usual: int, what: str, option: str
) -> PortChoice:
    """The port for ``what``: ``requested`` if given (0: any free port), else ``usual`` when
    it is free, else a free one with a note saying so.

    Raises :class:`PortTaken` when ``requested`` is in use.
    """
    if requested == 0:
        return PortChoice(free_port(host))
    if requested is not None:
        if not port_is_free(host, requested):
            raise PortTaken(
                f"{what}: port {requested} on {host} is in use (another demo?); stop what "
                f"listens there, or choose another port with {option} (0 picks a free one)"
            )
        return PortChoice(requested)
    if port_is_free(host, usual):
        return PortChoice(usual)
    port = free_port(host)
    return PortChoice(port, f"{what}: port {usual} is in use, using {port} ({option} chooses)")
