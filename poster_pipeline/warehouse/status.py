"""What each sync outcome writes to ``sync_status``: times, counts and the errors still standing.

Each kind of sync keeps its own error, so the status recovers by itself once the kind that
failed works again, instead of showing an old failure until the next full sync:

- a failed full sync sets the full error, a failed partial sync the partial error;
- a successful full sync clears both: it re-read the whole table, so whatever a partial sync
  could not fetch is current now;
- a successful partial sync clears only the partial error: it re-fetched a few objects and
  proves nothing about the whole table (a refused mass delete, say, still needs a person).

``last_success`` (no error standing) and ``last_error`` (the newer standing error) are kept in
step with the per-kind columns for whoever reads the table as it was before migration 0006,
and so that a downgrade past it loses nothing that the older columns could say.

Messages are stored as the caller gives them (cut to :data:`MAX_ERROR_CHARS`): callers pass
text known to hold no token or secret, since the sync API shows it to its clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.schema import sync_status

__all__ = [
    "KINDS",
    "MAX_ERROR_CHARS",
    "SyncError",
    "SyncKind",
    "SyncState",
    "errors_of",
    "newest_error",
    "read_states",
    "record_failure",
    "record_success",
]


class SyncKind(StrEnum):
    """A full sync re-reads a whole table; a partial sync re-fetches the objects webhooks named.

    Dagster's serializer refuses enums it does not know: run tags and metadata take ``.value``.
    """

    FULL = "full"
    PARTIAL = "partial"


KINDS: tuple[SyncKind, ...] = tuple(SyncKind)
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class SyncError:
    """A failure of one kind of sync that no later success of that kind has cleared yet.

    ``at`` is when the failed attempt started (aware, UTC).
    """

    kind: SyncKind
    message: str
    at: datetime


def newest_error(*errors: SyncError | None) -> SyncError | None:
    """The most recent of ``errors``, or None when none stands."""
    return max((e for e in errors if e is not None), key=lambda e: e.at, default=None)


def errors_of(row: Any) -> dict[SyncKind, SyncError | None]:
    """The standing error of each kind in a ``sync_status`` row (any object with its columns
    as attributes); naive datetimes, as SQLite returns them, are read as UTC."""
    errors: dict[SyncKind, SyncError | None] = {}
    for kind in KINDS:
        message, at = getattr(row, f"last_{kind}_error"), getattr(row, f"last_{kind}_error_at")
        errors[kind] = None if message is None else SyncError(kind, message, as_utc(at))
    return errors


@dataclass(frozen=True)
class SyncState:
    """An (account, entity)'s row of ``sync_status`` as the sync API and the dashboard
    report it. All datetimes are aware (UTC). ``attempted`` is whether the row exists at all
    (any sync of the pair, full or partial, successful or not, was recorded)."""

    last_full_sync_at: datetime | None = None
    last_partial_sync_at: datetime | None = None
    last_full_attempt_at: datetime | None = None
    attempted: bool = False
    full_error: SyncError | None = None
    partial_error: SyncError | None = None
    rows_active: int | None = None

    @property
    def last_success(self) -> bool | None:
        """False while an error of either kind stands, None if nothing was ever attempted."""
        if not self.attempted:
            return None
        return self.full_error is None and self.partial_error is None

    @property
    def last_error(self) -> SyncError | None:
        """The more recent of the standing errors."""
        return newest_error(self.full_error, self.partial_error)


def read_states(
    conn: Connection, accounts: Sequence[str], entities: Sequence[str] | None = None
) -> dict[tuple[str, str], SyncState]:
    """The states of ``accounts`` (× ``entities``, every entity when None), by (account,
    entity); a pair never synced has none."""
    if not accounts:
        return {}
    query = sa.select(sync_status).where(sync_status.c.account.in_(list(accounts)))
    if entities is not None:
        query = query.where(sync_status.c.entity.in_(list(entities)))
    states = {}
    for row in conn.execute(query):
        errors = errors_of(row)
        states[row.account, row.entity] = SyncState(
            last_full_sync_at=as_utc(row.last_full_sync_at),
            last_partial_sync_at=as_utc(row.last_partial_sync_at),
            last_full_attempt_at=as_utc(row.last_full_attempt_at),
            attempted=True,
            full_error=errors[SyncKind.FULL],
            partial_error=errors[SyncKind.PARTIAL],
            rows_active=row.rows_active,
        )
    return states


def _error_columns(kind: SyncKind) -> tuple[str, str]:
    return f"last_{kind}_error", f"last_{kind}_error_at"


def _other(kind: SyncKind) -> SyncKind:
    return SyncKind.PARTIAL if kind == SyncKind.FULL else SyncKind.FULL


def _upsert(
    conn: Connection,
    account: str,
    entity: str,
    *,
    values: Mapping[str, Any],
    first: Mapping[str, Any],
    later: Mapping[str, Any],
    increments: Sequence[str],
) -> None:
    """Write ``values`` to the pair's row and add one to each of ``increments``; the row's
    first write also sets ``first``, a later one ``later`` (SQL over the stored row)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    insert = dialect_insert(sync_status).values(
        account=account, entity=entity, **values, **first, **{name: 1 for name in increments}
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[sync_status.c.account, sync_status.c.entity],
            set_={
                **values,
                **later,
                **{name: sync_status.c[name] + 1 for name in increments},
            },
        )
    )


def record_success(
    conn: Connection,
    entity: str,
    account: str,
    kind: SyncKind,
    *,
    now: datetime,
    active: int,
    total: int,
    run_id: str | None,
) -> None:
    """Note a successful ``kind`` sync; call it inside the load's transaction, so the status
    commits with the rows. Clears the errors the success disproves (see the module)."""
    cleared = KINDS if kind == SyncKind.FULL else (SyncKind.PARTIAL,)
    values: dict[str, Any] = {
        f"last_{kind}_sync_at": now,
        "last_attempt_at": now,
        # A partial sync proves nothing about the whole table: it does not count as a full
        # attempt, which smart sync's back-off is measured from.
        **({"last_full_attempt_at": now} if kind == SyncKind.FULL else {}),
        **{column: None for k in cleared for column in _error_columns(k)},
        "rows_active": active,
        "rows_total": total,
        "last_run_id": run_id,
    }
    later: dict[str, Any] = {"last_success": True, "last_error": None}
    if kind == SyncKind.PARTIAL:  # the full error, if any, still stands
        full_error = sync_status.c.last_full_error
        later = {"last_success": full_error.is_(None), "last_error": full_error}
    _upsert(
        conn,
        account,
        entity,
        values=values,
        first={"last_success": True, "last_error": None},
        later=later,
        increments=[f"{kind}_sync_count"],
    )


def record_failure(
    engine: Engine,
    entity: str,
    account: str,
    error: str,
    *,
    now: datetime,
    kind: SyncKind = SyncKind.FULL,
    run_id: str | None = None,
) -> None:
    """Note a failed ``kind`` sync that started at ``now`` (the entity's rows are untouched).

    ``error`` is shown by the sync API as it is: it must hold no token or secret.
    """
    message = error[:MAX_ERROR_CHARS]
    message_column, at_column = _error_columns(kind)
    other_message, other_at = _error_columns(_other(kind))
    values: dict[str, Any] = {
        "last_attempt_at": now,
        **({"last_full_attempt_at": now} if kind == SyncKind.FULL else {}),
        message_column: message,
        at_column: now,
        "last_run_id": run_id,
    }
    # The older columns show the newer of the two standing errors.
    newer_other = sync_status.c[other_at] > sa.literal(now, sync_status.c[other_at].type)
    later = {
        "last_success": False,
        "last_error": sa.case(
            (newer_other, sync_status.c[other_message]),
            else_=sa.literal(message, sa.Text()),
        ),
    }
    with engine.begin() as conn:
        _upsert(
            conn,
            account,
            entity,
            values=values,
            first={"last_success": False, "last_error": message},
            later=later,
            increments=["failure_count"],
        )
