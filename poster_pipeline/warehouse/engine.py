"""Engines for the warehouse: PostgreSQL in production, an embedded SQLite file by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

__all__ = [
    "as_utc",
    "create_warehouse_engine",
    "default_database_url",
    "is_postgres",
    "shared_engine",
]

#: Connections a process may open beyond the pool's 5 kept ones: a drain run holds one per
#: account it syncs at once (its lock and load share it), up to ``drain_workers`` (32), with a
#: few more for claims and status writes.
MAX_OVERFLOW = 40


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data folder."""
    return f"sqlite:///{(data_dir / 'warehouse.db').resolve()}"


def _canonical_json(value: Any) -> str:
    # Sorted keys make equal objects equal text, so SQLite's text comparison of `raw` detects
    # real changes only (PostgreSQL's jsonb compares by value anyway).
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def create_warehouse_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` is read as psycopg 3, the driver the load path's
    COPY uses. SQLite gets WAL, a busy timeout and write-locking transactions, so concurrent
    syncs wait for each other instead of failing.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            json_serializer=_canonical_json,
            connect_args={"timeout": 60},
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling starts transactions late and lazily; take
            # it over (SQLAlchemy's documented recipe) so a sync is one real transaction.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(connection: sa.Connection) -> None:
            # IMMEDIATE takes the write lock up front: a deferred transaction that reads and
            # then writes fails at once (SQLITE_BUSY) if another writer got in between.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"unsupported warehouse database {parsed.get_backend_name()!r}: "
            "use postgresql+psycopg://… or leave POSTER_DATABASE_URL unset for SQLite"
        )
    return sa.create_engine(parsed, pool_pre_ping=True, max_overflow=MAX_OVERFLOW)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@cache
def shared_engine(url: str) -> Engine:
    """One pooled engine per URL and process, for long-lived callers (runs, sensors, the
    automation condition); one-off commands use :func:`create_warehouse_engine`."""
    return create_warehouse_engine(url)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime: SQLite hands back naive ones (every time the
    warehouse stores is UTC), PostgreSQL aware ones."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
