"""The sync lock: one sync of an (account, entity) at a time, in any process.

Without it, a full sync whose list was read before a change could commit after the partial
sync that applied the change, and write the old value back. Dagster's run queue keeps one run
per account at a time, but correctness must not rest on the scheduler (two runs launched
outside it, a second code location, a CLI run), so every sync, full or partial, holds this lock
from before it asks Poster until its transaction commits: the later sync then fetches after
the earlier one committed, and the newer data is written last.

- PostgreSQL: a session-level advisory lock on a 64-bit key of the pair, taken on the
  connection that then runs the load. No transaction stays open while Poster answers, and a
  killed process frees the lock at once (the server ends its session).
- SQLite (the embedded default): an OS file lock (``filelock``) on a file beside the database,
  per pair. Holding SQLite's write transaction instead would block the receiver's inserts for
  the whole fetch. A killed process frees it too.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = ["SyncLockBusy", "lock_key", "sync_lock"]

#: PostgreSQL's SQLSTATE for a lock wait that ran into ``lock_timeout``.
_LOCK_NOT_AVAILABLE = "55P03"
_memory_locks: dict[tuple[str, str, str], threading.Lock] = {}
_memory_guard = threading.Lock()


class SyncLockBusy(Exception):
    """Another sync of the pair held the lock for longer than the caller would wait."""

    def __init__(self, account: str, entity: str, waited: float) -> None:
        super().__init__(
            f"another sync of {entity} for account {account} held the sync lock "
            f"for more than {waited:g} s"
        )
        self.account, self.entity, self.waited = account, entity, waited


def lock_key(account: str, entity: str) -> int:
    """The advisory lock key of a pair: a signed 64-bit hash (PostgreSQL's ``bigint``)."""
    digest = hashlib.blake2b(f"{account}\x1f{entity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def sync_lock(
    engine: Engine, account: str, entity: str, *, wait: float | None = None
) -> Iterator[Connection]:
    """Hold the sync lock of (``account``, ``entity``) and yield a connection, with no
    transaction open, for the sync to load through; the lock is released on exit.

    ``wait`` None waits as long as it takes (a full sync behind a partial one waits a moment);
    a number of seconds raises :class:`SyncLockBusy` after that long (the webhook drain gives
    the events back and moves on to other accounts).
    """
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, lock_key(account, entity), account, entity, wait) as conn:
            yield conn
        return
    with _file_lock(engine, account, entity, wait), engine.connect() as conn:
        yield conn


@contextmanager
def _advisory_lock(
    engine: Engine, key: int, account: str, entity: str, wait: float | None
) -> Iterator[Connection]:
    conn = engine.connect()
    try:
        try:
            if wait is not None:
                # Local to this transaction: the pooled connection keeps its default after it.
                conn.execute(
                    sa.select(sa.func.set_config("lock_timeout", f"{int(wait * 1000)}ms", True))
                )
            conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            conn.commit()  # the lock is the session's: it outlives this short transaction
        except sa.exc.OperationalError as exc:
            conn.rollback()
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE and wait is not None:
                raise SyncLockBusy(account, entity, wait) from None
            raise
        try:
            yield conn
        finally:
            _unlock(conn, key)
    finally:
        conn.close()


def _unlock(conn: Connection, key: int) -> None:
    """Release the lock; a connection that cannot say so is discarded, which ends its session
    and so frees the lock on the server anyway."""
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
        conn.commit()
    except sa.exc.DBAPIError:
        conn.invalidate()


@contextmanager
def _file_lock(engine: Engine, account: str, entity: str, wait: float | None) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        # One process owns an in-memory database: a thread lock is enough.
        with _memory_guard:
            held = _memory_locks.setdefault((str(engine.url), account, entity), threading.Lock())
        if not held.acquire(timeout=-1 if wait is None else wait):
            raise SyncLockBusy(account, entity, wait or 0)
        try:
            yield
        finally:
            held.release()
        return
    folder = Path(f"{database}.locks")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lock_key(account, entity) & (2**64 - 1):016x}.lock"
    # thread_local=False with a new object per call: each call opens the file itself, so
    # threads of one process exclude each other as processes do.
    lock: filelock.BaseFileLock = filelock.FileLock(
        path, timeout=-1 if wait is None else wait, thread_local=False
    )
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SyncLockBusy(account, entity, wait or 0) from None
    try:
        yield
    finally:
        lock.release()
