"""The receiver under test: a migrated warehouse (PostgreSQL by default, SQLite on request)
with one active and one inactive account, TestClients of apps built on it, and a real server.

The PostgreSQL tests use their own database (``…_http``), so they never race other test
modules that reset the shared one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import Engine
from starlette.exceptions import StarletteDeprecationWarning

from poster_pipeline.http import ReceiverSettings, create_app
from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.migrate import upgrade
from poster_pipeline.warehouse.schema import accounts, webhook_events
from tests.databases import postgres_url, reset
from tests.http.deliveries import ACCOUNT, INACTIVE_ACCOUNT, SECRET, wait_for

with warnings.catch_warnings():
    # Starlette 1.10 nudges towards `httpx2`; httpx is this project's test dependency.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

HTTP_DATABASE_SUFFIX = "_http"

MakeClient = Callable[..., TestClient]


@pytest.fixture(scope="session")
def postgresql_warehouse() -> Iterator[Engine]:
    engine = create_warehouse_engine(postgres_url(HTTP_DATABASE_SUFFIX))
    # Empty the whole schema rather than drop the tables of `metadata`: a table that only
    # some import declares (alerts_sent) would survive and fail the migration.
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("receiver") / "warehouse.db"
    engine = create_warehouse_engine(f"sqlite:///{path}")
    reset(engine)
    yield engine
    engine.dispose()


def prepare(engine: Engine) -> Engine:
    """An empty queue, ``ACCOUNT`` active and ``INACTIVE_ACCOUNT`` deactivated."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(webhook_events))
        conn.execute(sa.delete(accounts))
        conn.execute(
            sa.insert(accounts),
            [
                {
                    "account": name,
                    "token_encrypted": "not-a-token",
                    "auth_method": "personal",
                    "is_active": active,
                    "connected_at": now,
                    "updated_at": now,
                }
                for name, active in ((ACCOUNT, True), (INACTIVE_ACCOUNT, False))
            ],
        )
    return engine


@pytest.fixture
def engine(postgresql_warehouse: Engine) -> Engine:
    """The PostgreSQL warehouse, emptied for this test."""
    return prepare(postgresql_warehouse)


@pytest.fixture(params=["postgresql", "sqlite"])
def any_engine(request: pytest.FixtureRequest) -> Engine:
    """Each backend in turn, emptied for this test."""
    return prepare(request.getfixturevalue(f"{request.param}_warehouse"))


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """``make_client(engine, **settings)``: a started TestClient of a receiver on ``engine``."""
    clients: list[TestClient] = []

    def make(engine: Engine, **settings: Any) -> TestClient:
        settings.setdefault("application_secret", SECRET)
        client = TestClient(create_app(ReceiverSettings(**settings), engine))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient, engine: Engine) -> TestClient:
    return make_client(engine)


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Served:
    """A running ``poster-pipeline serve``: its base URL, its console log and its process."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def serving(workers: int, log: Path, *args: str, port: int | None = None) -> Iterator[Served]:
    """``poster-pipeline serve`` on ``port`` (default: a free one) in its own process group
    (so that a test may kill its supervisor alone and still leave nothing behind), ready to
    answer."""
    port = _free_port() if port is None else port
    env = os.environ | {
        "POSTER_APPLICATION_SECRET": SECRET,
        "POSTER_DATABASE_URL": postgres_url(HTTP_DATABASE_SUFFIX),
    }
    console_script = Path(sys.executable).with_name("poster-pipeline")
    command = [str(console_script), "serve", "--port", str(port), "--workers", str(workers)]
    command += args
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/health/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, timeout=30, what="the server is ready")
        yield Served(base, log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with suppress(ProcessLookupError):  # workers left behind by a supervisor killed -9
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def served(engine: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """``poster-pipeline serve --no-access-log`` in a subprocess on a free port (``--workers``
    from the test's parameter, default 1)."""
    workers = getattr(request, "param", 1)
    with serving(workers, tmp_path / "server.log", "--no-access-log") as running:
        yield running


@pytest.fixture
def server(served: Served) -> str:
    """The base URL of :func:`served`; parametrize ``served`` (indirect) for more workers."""
    return served.url


@pytest.fixture
def uvicorn_thread() -> Iterator[Callable[..., str]]:
    """``uvicorn_thread(app, http="httptools"|"h11")``: ``app`` served by a real uvicorn on a
    free port in a thread of this process, so that its log records reach ``caplog``; returns
    its base URL."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any, *, http: str = "httptools") -> str:
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, http=http, log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        running.append((server, thread))
        wait_for(lambda: server.started, timeout=10, what="uvicorn started")
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)
