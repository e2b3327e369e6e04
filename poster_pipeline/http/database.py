"""The receiver's path to the warehouse: blocking calls off the event loop, with a deadline.

SQLAlchemy's engine is synchronous (its asyncio layer needs greenlet, not a dependency here), so
each call runs on a worker thread and the event loop keeps serving while PostgreSQL works. A
call that fails or outlasts the deadline raises :class:`DatabaseUnavailable` (the receiver
answers 503 at once, and Poster retries): a webhook is never left hanging on a database that
is down. Recovery needs nothing: a call that finds its pooled connection dead fails (503,
and Poster retries), and the whole pool is dropped then (by SQLAlchemy, or by the webhook
path's :func:`~poster_pipeline.warehouse.queue.store_webhook`), so the next call reconnects.
The pool does not ping a connection before lending it (``pool_pre_ping``): that is one more
round trip per webhook, to save one failed request per outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.schema import webhook_events

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DatabaseGate",
    "DatabaseUnavailable",
    "describe_error",
    "queue_table_exists",
    "receiver_engine",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: libpq's ``connect_timeout``: a host that drops packets fails in seconds, not minutes
#: (values under 2 are raised to 2 by libpq).
CONNECT_TIMEOUT_SECONDS = 2


class DatabaseUnavailable(Exception):
    """The warehouse did not answer in time or failed; the request may be retried."""


def receiver_engine(url: str, *, pool_size: int, timeout: float) -> Engine:
    """An engine for ``url`` sized for the receiver: ``pool_size`` connections, short connect
    and pool timeouts, no ping before each use (see the module's docstring). SQLite keeps the
    warehouse's own engine."""
    # create_warehouse_engine validates the URL and picks the driver (psycopg 3); it opens no
    # connection. Its PostgreSQL engine has default pool timeouts (30 s), too long here.
    warehouse = create_warehouse_engine(url)
    if warehouse.dialect.name != "postgresql":
        return warehouse
    connect_args = {}
    if "connect_timeout" not in warehouse.url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return sa.create_engine(
        warehouse.url,
        pool_size=pool_size,
        max_overflow=2,
        pool_timeout=timeout,
        connect_args=connect_args,
    )


def queue_table_exists(engine: Engine) -> bool:
    """Whether the warehouse answers and has the ``webhook_events`` table (raises when it
    does not answer)."""
    with engine.connect() as conn:
        return sa.inspect(conn).has_table(webhook_events.name)


def describe_error(exc: BaseException) -> str:
    """One line on a database error, safe to log."""
    # The driver's message without SQLAlchemy's statement and parameters, which would put a
    # whole webhook payload into the log.
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else 'no message'}"


class DatabaseGate:
    """Runs blocking warehouse calls on ``concurrency`` threads, each call within ``timeout``
    seconds, the wait for a free thread included.

    Keep ``concurrency`` at most the engine's pool size, so that threads never queue inside
    the pool. A call that times out while queued never runs; one that times out while running
    is abandoned, not killed: it finishes or fails on its own thread, which stays busy until
    then, so a hung database can never pile up threads. A webhook such a call stores late is
    stored once, since Poster's retry of it is a duplicate. Outages are logged when they start
    and end, not once per request.
    """

    def __init__(self, engine: Engine, *, timeout: float, concurrency: int) -> None:
        self.engine = engine
        self._timeout = timeout
        self._threads = ThreadPoolExecutor(concurrency, thread_name_prefix="receiver-warehouse")
        self._failing = False

    async def run(self, call: Callable[[Engine], T]) -> T:
        """``call(engine)`` on a worker thread; raises :class:`DatabaseUnavailable`."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                # Cancelling the wait also cancels the call if no thread has picked it up yet.
                result = await loop.run_in_executor(self._threads, call, self.engine)
        except TimeoutError:
            self._failed(f"no answer within {self._timeout:g} s")
            raise DatabaseUnavailable("the warehouse did not answer in time") from None
        except SQLAlchemyError as exc:
            self._failed(describe_error(exc))
            raise DatabaseUnavailable("the warehouse failed") from exc
        if self._failing:
            self._failing = False
            log.info("the warehouse answers again")
        return result

    def close(self, *, wait: bool = False) -> None:
        """Stop the threads once their calls end (``wait``: block until then); queued calls
        are dropped."""
        self._threads.shutdown(wait=wait, cancel_futures=True)

    def _failed(self, reason: str) -> None:
        if not self._failing:
            self._failing = True
            log.error("the warehouse is unavailable, answering 503: %s", reason)
        else:
            log.debug("the warehouse is still unavailable: %s", reason)
