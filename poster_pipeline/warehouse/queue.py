"""The webhook queue (``webhook_events``): durable intake, claims, settlement, retries.

An event moves ``pending → claimed → done``; a failed run puts it back to ``pending`` with a
growing delay, and after ``max_attempts`` it is ``dead`` (visible, retried by an operator).
Events Poster sends that the pipeline does not sync are stored as ``ignored`` with a reason.
A claim has a lease: if the run holding it dies, the lease expires and the events are claimed
again, so nothing is stranded. Delivery is at least once; the effect is idempotent because a
run re-fetches the objects instead of applying the webhook's payload.

While a claim on an (account, entity) is live, newer events of that pair stay pending: the
change they announce may postdate the running fetch, so they need a run of their own.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.catalogue import ENTITIES, entity
from poster_pipeline.poster.webhooks import WebhookEvent, data_id
from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import EventStatus
from poster_pipeline.warehouse.schema import webhook_events as events

__all__ = [
    "Claim",
    "ClaimedEvent",
    "DeadEvent",
    "Enqueued",
    "EventGroup",
    "RetryPolicy",
    "Unapplied",
    "claim_due",
    "claimed_events",
    "dead_events",
    "dedup_key",
    "enqueue",
    "group_claimed",
    "oldest_due",
    "purge",
    "queue_counts",
    "release_failed",
    "renew_claim",
    "retry_dead",
    "settle_done",
    "store_webhook",
    "unapplied_events",
    "unclaim",
]


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff of queued events: the n-th failure waits about
    ``base * 2**(n-1)`` (±20 % jitter, at most ``cap``); attempt ``max_attempts`` is the last."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=15)
    cap: timedelta = timedelta(hours=1)

    def delay(self, failures: int) -> timedelta:
        seconds = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (failures - 1))
        return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def dedup_key(event: WebhookEvent) -> str:
    """Identity of a delivery: Poster sends no event id, so the signed fields are the key
    (a retry of the same hook keeps them, docs/design.md §Webhook queue rules)."""
    parts = [event.account, event.object, str(event.object_id), event.action, event.time]
    parts.append("" if event.data is None else event.data)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Enqueued:
    id: int | None  # None for a duplicate delivery that changed nothing
    duplicate: bool


@cache
def _enqueue_statement(dialect: str) -> Any:
    """The queue's one INSERT, built once per dialect: :func:`enqueue` runs it through
    SQLAlchemy, :func:`store_webhook` as SQL text compiled once on PostgreSQL."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(events)
    # A second delivery of a known hook is stored once. If the first was already fetched (done)
    # or is being fetched (claimed), it asks for one more fetch: Poster's `time` has one-second
    # resolution, so a second real change in the same second looks like a duplicate, and a
    # harmless re-fetch beats a change missed until the next full sync.
    refetch = {
        "status": EventStatus.PENDING,
        "claim_id": None,
        "claimed_until": None,
        "attempts": 0,
        "next_attempt_at": insert.excluded.next_attempt_at,
        "settled_by_run": None,
        "updated_at": insert.excluded.updated_at,
    }
    return insert.on_conflict_do_update(
        index_elements=[events.c.dedup_key],
        set_=refetch,
        where=events.c.status.in_([EventStatus.DONE, EventStatus.CLAIMED]),
    ).returning(events.c.id)


def enqueue(
    conn: Connection,
    event: WebhookEvent,
    payload: Mapping[str, Any],
    *,
    entity: str | None,
    now: datetime,
    ignore_reason: str | None = None,
) -> Enqueued:
    """Store one delivery, once: a duplicate (same signed fields) inserts nothing, and puts a
    settled or claimed event back to pending (see :func:`_enqueue_statement`).

    ``ignore_reason`` stores the event as ``ignored`` (an object the pipeline does not sync,
    an unknown account, a test hook): recorded for the log, never run.
    """
    row = _row(event, payload, entity=entity, now=now, ignore_reason=ignore_reason)
    return _enqueued(conn.execute(_enqueue_statement(conn.dialect.name), row).scalar_one_or_none())


def store_webhook(
    engine: Engine,
    event: WebhookEvent,
    payload: Mapping[str, Any],
    *,
    entity: str | None,
    now: datetime,
    ignore_reason: str | None = None,
) -> Enqueued:
    """:func:`enqueue` in a transaction of its own, committed when this returns: the
    receiver's hot path, which answers Poster only after the commit.

    On PostgreSQL the INSERT is one server-side prepared statement run in autocommit on the
    psycopg connection: one round trip instead of three (BEGIN, INSERT, COMMIT), and about a
    third of the CPU of the same INSERT through SQLAlchemy's execution path (90 against 265 µs
    measured in a loop), which made the receiver CPU-bound. Other databases (the demo's
    SQLite) and drivers take the plain path.
    """
    if engine.dialect.driver != "psycopg":
        with engine.begin() as conn:
            return enqueue(
                conn, event, payload, entity=entity, now=now, ignore_reason=ignore_reason
            )
    row = _row(event, payload, entity=entity, now=now, ignore_reason=ignore_reason)
    sql, constants = _prepared_enqueue(tuple(row))
    # psycopg adapts everything else itself; a dict needs saying it is JSON.
    params = {**constants, **row, "payload": Jsonb(row["payload"])}
    with _autocommit(engine) as driver:
        found = driver.execute(sql, params, prepare=True).fetchone()
    return _enqueued(None if found is None else found[0])


def _row(
    event: WebhookEvent,
    payload: Mapping[str, Any],
    *,
    entity: str | None,
    now: datetime,
    ignore_reason: str | None,
) -> dict[str, Any]:
    """The values of one delivery's row in ``webhook_events``."""
    return {
        "dedup_key": dedup_key(event),
        "account": event.account,
        "account_number": event.account_number,
        "object": event.object,
        "object_id": _refetched_id(event, entity, ignore_reason),
        "action": event.action,
        "event_time": int(event.time),
        "entity": entity,
        "status": EventStatus.IGNORED if ignore_reason else EventStatus.PENDING,
        "ignore_reason": ignore_reason,
        "attempts": 0,
        "next_attempt_at": now,
        "received_at": now,
        "updated_at": now,
        "payload": dict(payload),
    }


def _refetched_id(event: WebhookEvent, entity_name: str | None, ignore_reason: str | None) -> int:
    """The id a sync re-fetches for the event: ``object_id``, or where the entity's hooks name
    their object in ``data`` (a ``stock`` hook: the storage), that id. The receiver ignores a
    hook without it (:func:`poster_pipeline.http.intake.classify`); ``object_id`` stays in the
    stored payload."""
    if entity_name is None or ignore_reason is not None:
        return event.object_id
    try:
        field = entity(entity_name).webhook_data_id
    except KeyError:  # an entity outside the catalogue is never claimed anyway
        return event.object_id
    found = data_id(event, field) if field else None
    return event.object_id if found is None else found


def _enqueued(new_id: int | None) -> Enqueued:
    # RETURNING yields no row when ON CONFLICT's WHERE left the existing row alone.
    return Enqueued(id=new_id, duplicate=new_id is None)


@cache
def _prepared_enqueue(columns: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """:func:`_enqueue_statement` for PostgreSQL as psycopg SQL text with a named parameter
    per row column in ``columns`` (the same every call), and the values of its constant
    parameters (the ON CONFLICT clause's); compiled once.

    Compiling with ``render_postcompile`` turns the IN list into plain parameters, so the text
    is the same on every call and can be prepared once per connection.
    """
    values: dict[str, Any] = {name: sa.bindparam(name, required=False) for name in columns}
    compiled = (
        _enqueue_statement("postgresql")
        .values(values)
        .compile(
            dialect=postgresql_psycopg.dialect(),
            compile_kwargs={"render_postcompile": True},
        )
    )
    constants = {name: value for name, value in compiled.params.items() if name not in values}
    return compiled.string, constants


@contextmanager
def _autocommit(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """A pooled psycopg connection in autocommit mode: each statement commits as it ends.

    psycopg's errors come out as SQLAlchemy's, as from any other query, so callers handle one
    kind. A connection that failed is discarded, since its state is unknown. One that lost its
    server also disposes of the pool, as SQLAlchemy does on a disconnect: the other pooled
    connections are dead too, and without ``pool_pre_ping`` each would fail a request.
    """
    with engine.connect() as conn:  # a failed connect raises SQLAlchemy's OperationalError
        driver = cast(psycopg.Connection[Any], conn.connection.driver_connection)
        try:
            driver.autocommit = True
            yield driver
            driver.autocommit = False  # back to transactions for the pool's other borrowers
        except psycopg.Error as exc:
            lost = driver.closed  # psycopg's sign of a lost server, as SQLAlchemy reads it
            conn.invalidate(exc)
            if lost:
                engine.dispose()
            raise sa.exc.DBAPIError.instance(
                None, None, exc, psycopg.Error, connection_invalidated=lost
            ) from exc
        except BaseException:
            conn.invalidate()
            raise


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    account: str
    entity: str
    object: str
    object_id: int
    action: str
    attempts: int


_CLAIMED_FIELDS = ("id", "account", "entity", "object", "object_id", "action", "attempts")


def claim_due(
    engine: Engine,
    *,
    claim_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    policy: RetryPolicy,
) -> list[ClaimedEvent]:
    """Claim up to ``limit`` due events for one sensor tick.

    Due: pending and past ``next_attempt_at``, or claimed by a run whose lease expired (an
    expired claim that used its last attempt becomes ``dead``). Pairs (account, entity) with a
    live claim are skipped. On PostgreSQL, rows another claimer holds are skipped
    (``FOR UPDATE SKIP LOCKED``); SQLite serialises writers anyway.
    """
    expired = (events.c.status == EventStatus.CLAIMED) & (events.c.claimed_until < now)
    with engine.begin() as conn:
        conn.execute(
            sa.update(events)
            .where(expired, events.c.attempts >= policy.max_attempts)
            .values(
                status=EventStatus.DEAD,
                last_error=f"claim expired after attempt {policy.max_attempts} (run lost)",
                claim_id=None,
                claimed_until=None,
                updated_at=now,
            )
        )
        live = events.alias("live")
        busy = sa.exists().where(
            live.c.status == EventStatus.CLAIMED,
            live.c.claimed_until >= now,
            live.c.account == events.c.account,
            live.c.entity == events.c.entity,
        )
        candidates = (
            sa.select(events.c.id)
            .where(
                ((events.c.status == EventStatus.PENDING) & (events.c.next_attempt_at <= now))
                | expired
            )
            .where(events.c.entity.in_([spec.name for spec in ENTITIES]), ~busy)
            .order_by(events.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list(conn.execute(candidates).scalars())
        if not ids:
            return []
        rows = conn.execute(
            sa.update(events)
            .where(events.c.id.in_(ids))
            .values(
                status=EventStatus.CLAIMED,
                claim_id=claim_id,
                claimed_until=now + lease,
                attempts=events.c.attempts + 1,
                updated_at=now,
            )
            .returning(*(events.c[f] for f in _CLAIMED_FIELDS))
        ).all()
    return sorted((ClaimedEvent(**row._asdict()) for row in rows), key=lambda e: e.id)


@dataclass(frozen=True)
class EventGroup:
    """The claimed events of one (account, entity): one partial sync."""

    account: str
    entity: str
    events: tuple[ClaimedEvent, ...]

    @property
    def object_ids(self) -> tuple[int, ...]:
        """The objects to re-fetch, each once however many events named it."""
        return tuple(sorted({e.object_id for e in self.events}))

    @property
    def event_ids(self) -> tuple[int, ...]:
        return tuple(sorted(e.id for e in self.events))

    def event_ids_of(self, object_ids: Iterable[int]) -> tuple[int, ...]:
        """The events that named any of ``object_ids``."""
        wanted = set(object_ids)
        return tuple(sorted(e.id for e in self.events if e.object_id in wanted))

    @property
    def removed(self) -> frozenset[int]:
        """Objects whose latest event says Poster removed them: a not-found for them is
        expected, not a fault to confirm."""
        latest: dict[int, ClaimedEvent] = {}
        for event in sorted(self.events, key=lambda e: e.id):
            latest[event.object_id] = event
        return frozenset(i for i, e in latest.items() if e.action == "removed")


def group_claimed(claimed: Iterable[ClaimedEvent]) -> list[EventGroup]:
    """One group per (account, entity), in account order: a burst of events on one object is
    one re-fetch."""
    groups: dict[tuple[str, str], list[ClaimedEvent]] = {}
    for event in sorted(claimed, key=lambda e: e.id):
        groups.setdefault((event.account, event.entity), []).append(event)
    return [
        EventGroup(account, entity, tuple(events))
        for (account, entity), events in sorted(groups.items())
    ]


def settle_done(
    conn: Connection, event_ids: Sequence[int], *, claim_id: str, run_id: str, now: datetime
) -> int:
    """Mark a run's events done, inside the transaction of its upsert. Events whose claim was
    lost (expired and claimed again) are left to the newer claim; returns how many settled."""
    if not event_ids:
        return 0
    result = conn.execute(
        sa.update(events)
        .where(
            events.c.id.in_(event_ids),
            events.c.status == EventStatus.CLAIMED,
            events.c.claim_id == claim_id,
        )
        .values(
            status=EventStatus.DONE,
            settled_by_run=run_id,
            claimed_until=None,
            last_error=None,
            updated_at=now,
        )
    )
    return result.rowcount


def renew_claim(engine: Engine, claim_id: str, *, now: datetime, lease: timedelta) -> int:
    """Extend a live claim's lease (a run starting after a wait in the run queue)."""
    with engine.begin() as conn:
        return conn.execute(
            sa.update(events)
            .where(events.c.claim_id == claim_id, events.c.status == EventStatus.CLAIMED)
            .values(claimed_until=now + lease, updated_at=now)
        ).rowcount


def unclaim(
    engine: Engine,
    claim_id: str,
    *,
    now: datetime,
    event_ids: Sequence[int] | None = None,
    delay: timedelta = timedelta(0),
) -> int:
    """Give back a claim's events (all, or ``event_ids``) that no sync tried: the sensor tick
    failed after claiming, or another sync of the pair held its lock. Pending again after
    ``delay``, the attempt not counted."""
    query = sa.update(events).where(
        events.c.claim_id == claim_id, events.c.status == EventStatus.CLAIMED
    )
    if event_ids is not None:
        query = query.where(events.c.id.in_(list(event_ids)))
    with engine.begin() as conn:
        return conn.execute(
            query.values(
                status=EventStatus.PENDING,
                claim_id=None,
                claimed_until=None,
                attempts=events.c.attempts - 1,
                next_attempt_at=now + delay,
                updated_at=now,
            )
        ).rowcount


def release_failed(
    engine: Engine,
    event_ids: Sequence[int],
    *,
    claim_id: str,
    error: str,
    now: datetime,
    policy: RetryPolicy,
) -> tuple[int, int]:
    """Return a failed run's events to the queue: pending after a backoff, or dead once they
    used ``max_attempts``. Returns (retried, dead)."""
    retried = dead = 0
    with engine.begin() as conn:
        held = conn.execute(
            sa.select(events.c.id, events.c.attempts).where(
                events.c.id.in_(list(event_ids)),
                events.c.status == EventStatus.CLAIMED,
                events.c.claim_id == claim_id,
            )
        ).all()
        for event_id, attempts in held:
            values: dict[str, Any] = {
                "claim_id": None,
                "claimed_until": None,
                "last_error": error[:2000],
                "updated_at": now,
            }
            if attempts >= policy.max_attempts:
                values["status"] = EventStatus.DEAD
                dead += 1
            else:
                values["status"] = EventStatus.PENDING
                values["next_attempt_at"] = now + policy.delay(attempts)
                retried += 1
            conn.execute(sa.update(events).where(events.c.id == event_id).values(**values))
    return retried, dead


def claimed_events(engine: Engine, claim_id: str) -> list[ClaimedEvent]:
    """The events ``claim_id`` still holds (a lost claim's events were claimed again)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*(events.c[f] for f in _CLAIMED_FIELDS))
            .where(events.c.claim_id == claim_id, events.c.status == EventStatus.CLAIMED)
            .order_by(events.c.id)
        ).all()
    return [ClaimedEvent(**row._asdict()) for row in rows]


@dataclass(frozen=True)
class Claim:
    """One claim on queued events, and the one owner of their life after it: every way out of
    ``claimed`` (done, back to pending, dead) for the claim's events goes through here.

    The sensor takes the claim (:meth:`take`); the drain run, in another process, rebuilds it
    from its id and settles, releases or gives back what it held.
    """

    id: str
    engine: Engine
    lease: timedelta
    policy: RetryPolicy

    @classmethod
    def take(
        cls, engine: Engine, *, lease: timedelta, policy: RetryPolicy, limit: int, now: datetime
    ) -> tuple[Claim, list[ClaimedEvent]]:
        """Claim up to ``limit`` due events under a new claim id (see :func:`claim_due`)."""
        claim = cls(uuid.uuid4().hex, engine, lease, policy)
        return claim, claim_due(
            engine, claim_id=claim.id, now=now, lease=lease, limit=limit, policy=policy
        )

    def events(self) -> list[ClaimedEvent]:
        return claimed_events(self.engine, self.id)

    def renew(self, now: datetime) -> int:
        return renew_claim(self.engine, self.id, now=now, lease=self.lease)

    def settle(
        self, conn: Connection, event_ids: Sequence[int], *, run_id: str, now: datetime
    ) -> int:
        """Mark events done inside the load's transaction (exactly-once effect)."""
        return settle_done(conn, event_ids, claim_id=self.id, run_id=run_id, now=now)

    def fail(self, event_ids: Sequence[int], *, error: str, now: datetime) -> tuple[int, int]:
        """Events whose sync failed: retried after a backoff, or dead; (retried, dead)."""
        if not event_ids:
            return 0, 0
        return release_failed(
            self.engine, event_ids, claim_id=self.id, error=error, now=now, policy=self.policy
        )

    def give_back(
        self,
        *,
        now: datetime,
        event_ids: Sequence[int] | None = None,
        delay: timedelta = timedelta(0),
    ) -> int:
        """Events no sync tried: pending again, the attempt not counted."""
        return unclaim(self.engine, self.id, now=now, event_ids=event_ids, delay=delay)


def oldest_due(engine: Engine, *, now: datetime) -> datetime | None:
    """When the longest-waiting due pending event became due (None: nothing is due)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.min(events.c.next_attempt_at)).where(
                events.c.status == EventStatus.PENDING, events.c.next_attempt_at <= now
            )
        ).scalar_one_or_none()


def queue_counts(engine: Engine) -> dict[str, int]:
    """Events by status (every status present, zero included)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.status, sa.func.count()).group_by(events.c.status)
        ).all()
    counts = dict.fromkeys(map(str, EventStatus), 0)
    counts.update({status: count for status, count in rows})
    return counts


@dataclass(frozen=True)
class DeadEvent:
    """A webhook event that ran out of attempts (``poster-pipeline queue retry-dead``).
    ``updated_at`` is when it died (aware, UTC)."""

    id: int
    account: str
    entity: str | None
    object: str
    object_id: int
    action: str
    attempts: int
    last_error: str | None
    updated_at: datetime


def dead_events(
    conn: Connection, *, died_after: datetime | None = None, newest: int | None = None
) -> list[DeadEvent]:
    """The dead events, oldest death first: those that died after ``died_after``, or only the
    ``newest`` N."""
    e = events.c
    query = sa.select(
        e.id,
        e.account,
        e.entity,
        e.object,
        e.object_id,
        e.action,
        e.attempts,
        e.last_error,
        e.updated_at,
    ).where(e.status == EventStatus.DEAD)
    if died_after is not None:
        query = query.where(e.updated_at > died_after)
    if newest is not None:
        query = query.order_by(e.updated_at.desc(), e.id.desc()).limit(newest)
        rows = reversed(conn.execute(query).all())
    else:
        rows = iter(conn.execute(query.order_by(e.updated_at, e.id)).all())
    return [DeadEvent(**{**row._asdict(), "updated_at": as_utc(row.updated_at)}) for row in rows]


@dataclass(frozen=True)
class Unapplied:
    """An account's events of one entity that were not applied: ``dead`` ones and ones
    ``retrying`` (pending again after a failure)."""

    account: str
    dead: int
    retrying: int


def unapplied_events(conn: Connection, entity: str) -> list[Unapplied]:
    """The accounts with events of ``entity`` not applied, by account name."""
    e = events.c
    query = (
        sa.select(
            e.account,
            sa.func.count().filter(e.status == EventStatus.DEAD),
            sa.func.count().filter(e.status == EventStatus.PENDING),
        )
        .where(
            e.entity == entity,
            (e.status == EventStatus.DEAD)
            | ((e.status == EventStatus.PENDING) & e.last_error.is_not(None)),
        )
        .group_by(e.account)
        .order_by(e.account)
    )
    return [Unapplied(*row) for row in conn.execute(query)]


def retry_dead(engine: Engine, *, now: datetime, ids: Iterable[int] | None = None) -> int:
    """Give dead events a fresh set of attempts; returns how many."""
    query = sa.update(events).where(events.c.status == EventStatus.DEAD)
    if ids is not None:
        query = query.where(events.c.id.in_(list(ids)))
    with engine.begin() as conn:
        return conn.execute(
            query.values(
                status=EventStatus.PENDING, attempts=0, next_attempt_at=now, updated_at=now
            )
        ).rowcount


def purge(engine: Engine, *, older_than: datetime) -> int:
    """Delete settled events (done, ignored) received before ``older_than``; pending, claimed
    and dead events are kept whatever their age."""
    with engine.begin() as conn:
        return conn.execute(
            sa.delete(events).where(
                events.c.status.in_([EventStatus.DONE, EventStatus.IGNORED]),
                events.c.received_at < older_than,
            )
        ).rowcount
