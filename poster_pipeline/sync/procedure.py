"""The sync procedure, without Dagster: lock, fetch, load, settle or release, record.

Every sync of an (account, entity), full or partial, whoever starts it (an asset run, the
webhook drain, a test), goes through here, so the rules hold everywhere:

- the pair's sync lock is held from before Poster is asked until the load commits
  (:mod:`poster_pipeline.warehouse.locks`), so the newer data is always written last;
- a failure leaves the rows as they were and is recorded in ``sync_status`` with a message a
  person can act on (never a token);
- a partial sync settles the events of what it applied in the load's own transaction, and
  retries or dead-letters only the events of the objects that failed.

Dagster's assets and the drain op only map what these functions return to their events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.catalogue import Entity, entity
from poster_pipeline.poster.client import PosterClient
from poster_pipeline.poster.errors import PosterError
from poster_pipeline.poster.fetch import FetchStrategy, fetch_objects, live_in_poster
from poster_pipeline.poster.records import PosterRecord
from poster_pipeline.sync.listing import full_listing
from poster_pipeline.warehouse.accounts import AccountError
from poster_pipeline.warehouse.guard import DeletionGuard, MassDeleteRefused
from poster_pipeline.warehouse.load import SyncReport, full_sync, partial_sync
from poster_pipeline.warehouse.locks import SyncLockBusy, sync_lock
from poster_pipeline.warehouse.queue import Claim, EventGroup
from poster_pipeline.warehouse.status import SyncKind, record_failure

__all__ = [
    "FullSyncResult",
    "PartialSyncResult",
    "SyncFailed",
    "SyncServices",
    "run_full_sync",
    "run_partial_sync",
]

log = logging.getLogger(__name__)

#: Failures a sync reports cleanly: their text is safe to show (no token, no secret).
EXPECTED_FAILURES = (PosterError, AccountError, sa.exc.SQLAlchemyError, psycopg.Error)
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class SyncServices:
    """What a sync needs from outside: the warehouse, each account's token, and a Poster
    client for a token (Dagster's resources provide them; tests pass their own)."""

    engine: Engine
    token_for: Callable[[str], str]
    client_for: Callable[[str, str], PosterClient]  # (token, account)


class SyncFailed(Exception):
    """A sync failed and changed nothing; the failure is recorded in ``sync_status``.
    ``refused`` is set when the mass-delete guard was the reason."""

    def __init__(self, message: str, *, refused: MassDeleteRefused | None = None) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class FullSyncResult:
    report: SyncReport
    api_calls: int
    api_retries: int
    preview: list[PosterRecord]
    duration_s: float


def run_full_sync(
    services: SyncServices,
    spec: Entity,
    account: str,
    *,
    guard: DeletionGuard,
    allow_mass_delete: bool = False,
    run_id: str | None = None,
    since: date | None = None,
    window_days: int = 62,
) -> FullSyncResult:
    """Make ``account``'s ``spec`` table match Poster's list; raises :class:`SyncFailed`.

    For an entity Poster lists by date (supplies) the list of the last ``window_days`` days
    is read, or of the days from ``since`` on (history), and only rows inside it can vanish.
    """
    now, started = datetime.now(UTC), time.perf_counter()
    first: list[PosterRecord] = []
    try:
        token = services.token_for(account)
        with (
            services.client_for(token, account) as client,
            # Waits for a running sync of the pair; taken before the list is asked for.
            sync_lock(services.engine, account, spec.name) as conn,
        ):
            listing = full_listing(
                client,
                spec,
                conn,
                account,
                today=now.date(),
                window_days=window_days,
                since=since,
                confirm_absence=not allow_mass_delete,
            )
            # Streamed from the answer into the warehouse, so the list is never held whole;
            # closed on every exit, so a failed load does not keep the answer's socket.
            with closing(listing.records) as listed:
                report = full_sync(
                    conn,
                    spec,
                    account,
                    _keeping_first(listed, first),
                    now=now,
                    window=listing.window,
                    guard=guard,
                    allow_mass_delete=allow_mass_delete,
                    run_id=run_id,
                    live_in_poster=(
                        partial(live_in_poster, client, spec) if spec.single_method else None
                    ),
                )
    except MassDeleteRefused as refused:
        _record_failure(
            services.engine, spec.name, account, str(refused), now, SyncKind.FULL, run_id
        )
        raise SyncFailed(str(refused), refused=refused) from None
    except EXPECTED_FAILURES as exc:
        message = f"{spec.name} sync of account {account} failed: {exc}"
        _record_failure(services.engine, spec.name, account, message, now, SyncKind.FULL, run_id)
        raise SyncFailed(message) from None
    except Exception as exc:
        # Unexpected (a bad POSTER_TOKEN_KEY, a bug): recorded by type only, since its text is
        # not known to be free of secrets, so smart sync backs off instead of retrying every
        # minute; the caller shows the traceback.
        message = f"unexpected {type(exc).__name__}"
        _record_failure(services.engine, spec.name, account, message, now, SyncKind.FULL, run_id)
        raise
    return FullSyncResult(
        report, client.stats.total, client.stats.retries, first, time.perf_counter() - started
    )


def _keeping_first(
    records: Iterable[PosterRecord], first: list[PosterRecord]
) -> Iterator[PosterRecord]:
    """``records``, passed on, the first :data:`PREVIEW_ROWS` of them also kept in ``first``."""
    for record in records:
        if len(first) < PREVIEW_ROWS:
            first.append(record)
        yield record


@dataclass(frozen=True)
class PartialSyncResult:
    """What a partial sync of one event group did.

    ``report`` is None when nothing was applied: ``error`` says why (the whole group failed)
    or ``deferred`` counts the events given back untried (another sync held the lock).
    ``failed`` maps each object that failed alone to its error.
    """

    account: str
    entity: str
    object_ids: tuple[int, ...]
    report: SyncReport | None = None
    strategy: FetchStrategy | None = None
    missing: tuple[int, ...] = ()
    failed: dict[int, str] = field(default_factory=dict)
    error: str | None = None
    settled: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    api_calls: int = 0
    api_retries: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every named object was applied (deferred events are not a failure)."""
        return self.error is None and not self.failed

    @property
    def problem(self) -> str | None:
        """What went wrong, for a person: the group's error, or which objects failed."""
        if self.error is not None or not self.failed:
            return self.error
        errors = "; ".join(f"{i}: {e}" for i, e in sorted(self.failed.items())[:5])
        return (
            f"partial sync of {self.entity} for account {self.account}: {len(self.failed)} of "
            f"{len(self.object_ids)} objects failed ({errors})"
        )


def run_partial_sync(
    services: SyncServices,
    claim: Claim,
    group: EventGroup,
    *,
    run_id: str,
    single_fetch_limit: int = 10,
    lock_wait: float = 5.0,
) -> PartialSyncResult:
    """Re-fetch a group's objects and apply them, settling their events in the same
    transaction; never raises for a failure of Poster or the warehouse (the result says it).

    Another sync of the pair holding the lock past ``lock_wait`` seconds defers the group:
    its events are given back untried, due again after about as long.
    """
    spec, account = entity(group.entity), group.account
    now, started = datetime.now(UTC), time.perf_counter()
    base = PartialSyncResult(account, spec.name, group.object_ids)
    client: PosterClient | None = None

    def finished(**values: Any) -> PartialSyncResult:
        calls, retries = (client.stats.total, client.stats.retries) if client else (0, 0)
        elapsed = time.perf_counter() - started
        return replace(base, api_calls=calls, api_retries=retries, duration_s=elapsed, **values)

    try:
        token = services.token_for(account)
        with (
            services.client_for(token, account) as client,
            sync_lock(services.engine, account, spec.name, wait=lock_wait) as conn,
        ):
            fetched = fetch_objects(
                client,
                spec,
                group.object_ids,
                removed=group.removed,
                single_fetch_limit=single_fetch_limit,
            )
            applied = set(group.object_ids) - set(fetched.failed)
            report = partial_sync(
                conn,
                spec,
                account,
                fetched.records,
                missing=fetched.missing,
                now=now,
                run_id=run_id,
                in_transaction=_settling(claim, group.event_ids_of(applied), run_id, now),
                # Stock: each storage re-read is replaced whole (its vanished rows deleted).
                scopes=applied if spec.scope is not None else None,
            )
    except SyncLockBusy as busy:
        log.info(f"{busy}: {len(group.events)} events deferred")
        deferred = claim.give_back(
            now=now, event_ids=group.event_ids, delay=timedelta(seconds=lock_wait)
        )
        return finished(deferred=deferred)
    except EXPECTED_FAILURES as exc:
        return _group_failed(services, claim, group, f"{exc}", now, run_id, finished)
    except Exception as exc:
        log.exception(f"partial sync of {spec.name} for account {account}: unexpected error")
        return _group_failed(
            services, claim, group, f"unexpected {type(exc).__name__}", now, run_id, finished
        )
    result = finished(
        report=report,
        strategy=fetched.strategy,
        missing=tuple(sorted(fetched.missing)),
        failed=dict(fetched.failed),
        settled=report.settled_events,
    )
    if result.problem is None:
        return result
    try:
        retried, dead = claim.fail(
            group.event_ids_of(fetched.failed), error=result.problem, now=datetime.now(UTC)
        )
    except EXPECTED_FAILURES as exc:  # the warehouse is down: the lease expiry retries them
        log.warning(f"could not release the events of the failed objects: {exc}")
        retried = dead = 0
    _record_failure(
        services.engine, spec.name, account, result.problem, now, SyncKind.PARTIAL, run_id
    )
    return replace(result, retried=retried, dead=dead)


def _settling(
    claim: Claim, event_ids: tuple[int, ...], run_id: str, now: datetime
) -> Callable[[Connection], int]:
    def settle(conn: Connection) -> int:
        return claim.settle(conn, event_ids, run_id=run_id, now=now)

    return settle


def _group_failed(
    services: SyncServices,
    claim: Claim,
    group: EventGroup,
    error: str,
    now: datetime,
    run_id: str,
    finished: Callable[..., PartialSyncResult],
) -> PartialSyncResult:
    """The whole group failed (its list call, the token, the warehouse): every event is
    retried or dead, and the failure recorded."""
    message = f"partial sync of {group.entity} for account {group.account} failed: {error}"
    _record_failure(
        services.engine, group.entity, group.account, message, now, SyncKind.PARTIAL, run_id
    )
    try:
        retried, dead = claim.fail(group.event_ids, error=message, now=datetime.now(UTC))
    except EXPECTED_FAILURES as exc:  # the warehouse is down: the lease expiry retries them
        log.warning(f"could not release the events of a failed partial sync: {exc}")
        retried = dead = 0
    return finished(error=message, retried=retried, dead=dead)


def _record_failure(
    engine: Engine,
    entity_name: str,
    account: str,
    message: str,
    now: datetime,
    kind: SyncKind,
    run_id: str | None,
) -> None:
    """Note the failure in ``sync_status``; a warehouse that cannot take it is logged, not
    raised, so the sync's own error is the one the caller sees."""
    try:
        record_failure(engine, entity_name, account, message, now=now, kind=kind, run_id=run_id)
    except EXPECTED_FAILURES as exc:  # the warehouse itself may be what failed
        log.warning(f"could not record the failure in sync_status: {exc}")
