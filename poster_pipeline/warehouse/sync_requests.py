"""Sync requests: full syncs asked for through the sync API, waiting for the Dagster sensor.

The sync API runs in the receiver's worker processes and cannot launch Dagster runs itself;
the ``sync_requests`` sensor can. This table is the hand-over between them: the API inserts
``pending`` rows, the sensor turns them into runs and marks them ``launched`` with the run's
key. Because every API worker reads the same table, the per-(account, entity) rate limit of
forced syncs and the "already queued" check hold across processes, which an in-memory limit
would not.

The table is declared on the warehouse's ``metadata`` (migration ``0005``), so ``poster-pipeline
db upgrade`` creates it and the schema test compares it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import REQUEST_STATUSES, RequestStatus, sync_requests

__all__ = [
    "REQUEST_STATUSES",
    "NewSyncRequest",
    "RequestHistory",
    "SyncRequest",
    "add_requests",
    "lock_decisions",
    "mark_launched",
    "pending_requests",
    "prune_launched",
    "request_history",
    "sync_requests",
]


@dataclass(frozen=True)
class NewSyncRequest:
    """A full sync to ask for."""

    account: str
    entity: str
    force: bool


@dataclass(frozen=True)
class SyncRequest:
    """A stored request, as the sensor reads it."""

    id: int
    account: str
    entity: str
    force: bool
    requested_at: datetime
    requested_by: str


@dataclass(frozen=True)
class RequestHistory:
    """What the API must know of one (account, entity)'s recent requests.

    - ``pending``: a request waits for the sensor; another one would only merge into it.
    - ``last_forced_at``: the newest forced request (any status), for the rate limit.
    - ``last_launched_at``: when the newest launched request was made; the run it started
      may still be queued or running.
    """

    pending: bool = False
    last_forced_at: datetime | None = None
    last_launched_at: datetime | None = None


def add_requests(
    conn: Connection, requests: Iterable[NewSyncRequest], *, now: datetime, requested_by: str
) -> None:
    """Insert ``requests`` as pending, in the caller's transaction."""
    rows = [
        {
            "account": request.account,
            "entity": request.entity,
            "force": request.force,
            "requested_at": now,
            "requested_by": requested_by,
            "status": RequestStatus.PENDING,
        }
        for request in requests
    ]
    if rows:
        conn.execute(sa.insert(sync_requests), rows)


def request_history(
    conn: Connection, accounts: Sequence[str], *, since: datetime
) -> dict[tuple[str, str], RequestHistory]:
    """Per (account, entity): pending requests of any age, forced and launched ones made
    after ``since`` (pass the older of the rate-limit and in-flight horizons)."""
    if not accounts:
        return {}
    t = sync_requests
    query = (
        sa.select(t.c.account, t.c.entity, t.c.status, t.c.force, sa.func.max(t.c.requested_at))
        .where(
            t.c.account.in_(accounts),
            (t.c.status == RequestStatus.PENDING) | (t.c.requested_at > since),
        )
        .group_by(t.c.account, t.c.entity, t.c.status, t.c.force)
    )
    history: dict[tuple[str, str], RequestHistory] = {}
    for account, entity, status, force, latest in conn.execute(query):
        latest = as_utc(latest)
        seen = history.get((account, entity), RequestHistory())
        forced_at = seen.last_forced_at
        if force and latest > since and (forced_at is None or latest > forced_at):
            forced_at = latest
        launched_at = seen.last_launched_at
        if status == RequestStatus.LAUNCHED and (launched_at is None or latest > launched_at):
            launched_at = latest
        history[(account, entity)] = RequestHistory(
            pending=seen.pending or status == RequestStatus.PENDING,
            last_forced_at=forced_at,
            last_launched_at=launched_at,
        )
    return history


def prune_launched(conn: Connection, *, before: datetime) -> int:
    """Delete launched requests made before ``before``; returns how many. Pending ones are
    kept whatever their age: they are still owed a run."""
    result = conn.execute(
        sa.delete(sync_requests).where(
            sync_requests.c.status == RequestStatus.LAUNCHED, sync_requests.c.requested_at < before
        )
    )
    return result.rowcount


def pending_requests(engine: Engine, *, limit: int) -> list[SyncRequest]:
    """The oldest ``limit`` pending requests, oldest first."""
    t = sync_requests
    query = (
        sa.select(t.c.id, t.c.account, t.c.entity, t.c.force, t.c.requested_at, t.c.requested_by)
        .where(t.c.status == RequestStatus.PENDING)
        .order_by(t.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        SyncRequest(
            id=row.id,
            account=row.account,
            entity=row.entity,
            force=row.force,
            requested_at=as_utc(row.requested_at),
            requested_by=row.requested_by,
        )
        for row in rows
    ]


def mark_launched(engine: Engine, run_keys: Mapping[int, str | None], *, now: datetime) -> int:
    """Mark the requests ``run_keys`` names as launched, each with its run key (None: no run,
    the request was dropped); returns how many were still pending. Idempotent: a request
    already launched is left as it is."""
    if not run_keys:
        return 0
    t = sync_requests
    statement = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("request_id"), t.c.status == RequestStatus.PENDING)
        .values(status=RequestStatus.LAUNCHED, launched_at=now, run_key=sa.bindparam("key"))
    )
    with engine.begin() as conn:
        result = conn.execute(
            statement, [{"request_id": id_, "key": key} for id_, key in run_keys.items()]
        )
    return result.rowcount


#: The key of the advisory lock that serialises decisions on new requests (PostgreSQL's
#: pg_advisory_xact_lock takes a 64-bit key; this one reads "poster:sync").
_DECISION_LOCK = 0x706F737465723A73


def lock_decisions(conn: Connection) -> None:
    """Hold, until ``conn``'s transaction ends, the lock that makes "decide from the stored
    requests, then insert" atomic across processes (PostgreSQL; SQLite serialises writers)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DECISION_LOCK)))
