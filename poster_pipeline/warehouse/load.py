"""The load path: Poster's objects of one entity for one account, applied in one transaction.

A *full* sync applies Poster's complete list; a *partial* sync applies re-fetched objects named
by webhooks and leaves the other rows alone. Either way:

1. Stage the records in a temporary table (PostgreSQL: psycopg COPY of each record as it
   streams in, so no list of a catalogue's records is ever held; SQLite, the embedded
   default: batched inserts of the list read first); an id Poster lists twice keeps its last
   occurrence.
2. Count what would change, and let the deletion guard refuse before anything is written.
3. Upsert only rows whose typed content or deletion state differs (``IS DISTINCT FROM``), so
   an unchanged re-sync writes no row and ``updated_at`` means a real change.
4. Mark as deleted the active rows Poster no longer lists (full) or answered not found for
   (partial); rows Poster flags deleted come in step 3.
5. Record the sync in ``sync_status`` (:mod:`poster_pipeline.warehouse.status`).

A failure anywhere rolls the whole transaction back: the previous rows stay exactly as they
were. The caller records the failure with
:func:`~poster_pipeline.warehouse.status.record_failure`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import chain, islice
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import CreateTable

from poster_pipeline.catalogue import Entity, FieldType
from poster_pipeline.poster.records import PosterRecord
from poster_pipeline.warehouse.guard import (
    AbsenceRefuted,
    DeletionGuard,
    MassDeleteRefused,
    sample_evenly,
)
from poster_pipeline.warehouse.schema import BOOKKEEPING_COLUMNS, entity_table
from poster_pipeline.warehouse.status import SyncKind, record_success

__all__ = ["SyncReport", "active_scopes", "full_sync", "partial_sync"]

_SQLITE_BATCH = 2_000
_INDEXED_STAGE_ROWS = 1_000
#: The stage's column numbering records in arrival order: the last of a repeated id wins.
_ORDER = "staged_order"


@dataclass(frozen=True)
class SyncReport:
    """What a sync found and did.

    ``marked_deleted`` counts rows that became deleted, flagged by Poster or no longer listed;
    ``updated`` counts the other rewritten rows (content changed or restored, ``restored``
    being part of it); ``unchanged`` rows were not written. ``duplicates`` counts ids Poster
    listed more than once (the last occurrence wins).
    """

    entity: str
    account: str
    fetched: int
    inserted: int
    updated: int
    marked_deleted: int
    restored: int
    unchanged: int
    duplicates: int
    active_before: int  # of the rows the read covered (a supplies sync: its window)
    active_total: int
    rows_total: int
    guard_overridden: bool
    kind: SyncKind = SyncKind.FULL
    settled_events: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.marked_deleted


@cache
def _create_stage_sql(spec: Entity, dialect: sa.Dialect) -> str:
    """``CREATE TEMPORARY TABLE`` of the stage, rendered once per entity and dialect."""
    return str(CreateTable(_stage_table(spec)).compile(dialect=dialect))


@cache
def _stage_table(spec: Entity) -> sa.Table:
    """A temporary table with the entity's Poster columns (no account, no bookkeeping) and the
    arrival order; indexed by the Poster id once filled (:func:`_index_stage`).

    One ``Table`` object per entity, built once: statements that name the same object hit
    SQLAlchemy's compiled cache, where a new object per sync made every statement compile
    again (a third of a small partial sync's time).
    """
    name = f"stage_{spec.name}"
    target = entity_table(spec)
    columns = [sa.Column(c.name, c.type) for c in target.columns if c.name in spec.field_names]
    columns += [
        sa.Column("raw", target.c.raw.type, nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column(_ORDER, sa.BigInteger(), nullable=False),
    ]
    return sa.Table(
        name, sa.MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )


class _Tally:
    """Numbers records as they stream to the stage, and counts the ids Poster repeats (within
    a scope: stock lists ingredient 39 once per storage)."""

    def __init__(self, spec: Entity) -> None:
        self.fetched = 0
        self.duplicates = 0
        self._ids: set[Any] = set()
        self._scope = spec.scope

    def number(self, records: Iterable[PosterRecord]) -> Iterator[tuple[int, PosterRecord]]:
        scope = self._scope
        for record in records:
            identity = record.id if scope is None else (record.values[scope], record.id)
            if identity in self._ids:
                self.duplicates += 1
            else:
                self._ids.add(identity)
            self.fetched += 1
            yield self.fetched, record

    @property
    def distinct(self) -> int:
        return self.fetched - self.duplicates


def _started(conn: Connection, records: Iterable[PosterRecord]) -> Iterable[PosterRecord]:
    """``records`` ready to stage: the request behind a stream made (retried, and refused with
    its typed error) before the transaction opens, so only reading the list overlaps it. On
    SQLite, whose transactions hold the write lock, every record is read first."""
    if conn.dialect.name != "postgresql":
        return list(records)
    iterator = iter(records)
    first = next(iterator, None)
    return iterator if first is None else chain([first], iterator)


def _index_stage(
    conn: Connection, stage: sa.Table, keys: tuple[str, ...], *, rows: int, repeated: bool
) -> None:
    """Index the filled stage by id (the "still listed?" checks look rows up by it; building
    the index once is cheaper than keeping it during the load), and keep only the last
    occurrence of an id Poster listed more than once. A stage of a few rows (a partial sync)
    is scanned faster than an index is built."""
    if rows >= _INDEXED_STAGE_ROWS:
        # SQL text, not an sa.Index: that would attach itself to the cached stage table.
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(quote(k) for k in keys)
        conn.exec_driver_sql(
            f"CREATE INDEX {quote(f'{stage.name}_{keys[-1]}')} ON {quote(stage.name)} ({columns})"
        )
    if repeated:
        later = stage.alias("later")
        conn.execute(
            sa.delete(stage).where(
                sa.exists().where(
                    *(later.c[k] == stage.c[k] for k in keys), later.c[_ORDER] > stage.c[_ORDER]
                )
            )
        )


def _copy_stage(
    conn: Connection, stage: sa.Table, spec: Entity, numbered: Iterable[tuple[int, PosterRecord]]
) -> None:
    """COPY the records into the stage table through psycopg, one row at a time (flat memory)."""
    json_fields = {f.name for f in spec.fields if f.type is FieldType.JSON}
    column_list = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in stage.columns)
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    names = spec.field_names  # a property: build the tuple once, not once per row
    with cursor, cursor.copy(f"COPY {stage.name} ({column_list}) FROM STDIN") as copy:
        for order, record in numbered:
            values = record.values
            row = [_json(values[f]) if f in json_fields else values[f] for f in names]
            row += [_json(record.raw), record.is_deleted, order]
            copy.write_row(row)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    # orjson: serialising every raw record is the largest cost of staging with the stdlib's json.
    text = orjson.dumps(value).decode()
    # PostgreSQL's jsonb refuses NUL ("\u0000"); Poster data has no use for it.
    return text.replace("\\u0000", "") if "\\u0000" in text else text


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _insert_stage(
    conn: Connection, stage: sa.Table, numbered: Iterable[tuple[int, PosterRecord]]
) -> None:
    rows = (
        {**r.values, "raw": r.raw, "is_deleted": r.is_deleted, _ORDER: order}
        for order, r in numbered
    )
    for batch in _batched(rows, _SQLITE_BATCH):
        conn.execute(stage.insert(), batch)


#: A windowed full sync asks Poster for each row that vanished from its window, up to this
#: many (a supply's date moved out of the window is not a deletion); beyond, it samples.
MOVED_CHECK_LIMIT = 50


def _inside(spec: Entity, record: PosterRecord, window: tuple[datetime, datetime]) -> bool:
    when = record.values.get(str(spec.window_field))
    return when is None or window[0] <= when < window[1]


@dataclass(frozen=True)
class _Plan:
    """What applying the staged snapshot would do, counted before anything is written."""

    inserted: int
    updated: int
    flagged: int  # active rows Poster now flags deleted
    restored: int
    refreshed: int  # same typed content, other raw (an untyped field, another endpoint)
    active: int
    vanished: int  # active rows Poster no longer lists

    @property
    def to_delete(self) -> int:
        return self.flagged + self.vanished

    @property
    def rewrites(self) -> bool:
        """Whether the upsert has anything to write (an unchanged re-sync skips it)."""
        return bool(self.inserted or self.updated or self.flagged or self.refreshed)


@dataclass(frozen=True)
class _Statements:
    """The statements of one entity's sync, built once per (entity, dialect, kind) so each
    sync only binds values; building them (a dozen column comparisons each) and compiling
    them again on every sync cost more than running them for a small partial sync."""

    plan_staged: sa.Executable
    plan_current: sa.Executable
    upsert: sa.Executable
    mark_vanished: sa.Executable
    vanished_ids: sa.Executable
    totals: sa.Executable


def _bound(name: str, type_: Any) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=type_)


@cache
def _statements(
    spec: Entity, dialect: str, full: bool, scoped: bool = False, windowed: bool = False
) -> _Statements:
    """Statements bound at run time to ``sync_account``, ``sync_now`` and, for a partial
    sync, ``missing_ids`` (the named ids Poster says are gone); ``scoped``: to ``scope_ids``
    (the scopes whose lists were read), ``windowed``: to ``window_from``/``window_to``."""
    table, stage = entity_table(spec), _stage_table(spec)
    # Not named after a column: an UPDATE reserves those names for its SET clause.
    account = _bound("sync_account", sa.Text())
    now = _bound("sync_now", table.c.synced_at.type)
    key = table.c[spec.key]
    # Which rows a sync marks deleted unless staged: in a full sync every row Poster no longer
    # lists (of the scopes and the window that were read); in a partial sync only the named
    # ids Poster says are gone.
    # The rows the read covers: the deletion guard weighs what vanished against these, so a
    # supplies window is not weighed against years of history.
    covered: sa.ColumnElement[bool] = sa.true()
    if scoped and spec.scope is not None:
        scope = table.c[spec.scope]
        covered &= scope.in_(sa.bindparam("scope_ids", expanding=True, type_=scope.type))
    if windowed and spec.window_field is not None:
        when = table.c[spec.window_field]
        covered &= (when >= _bound("window_from", when.type)) & (
            when < _bound("window_to", when.type)
        )
    absent = (
        ~sa.exists().where(*(stage.c[k] == table.c[k] for k in spec.keys))
        if full
        else key.in_(sa.bindparam("missing_ids", expanding=True, type_=key.type))
    )
    vanishing = absent & covered
    count = sa.func.count
    return _Statements(
        plan_staged=_plan_staged(spec, stage, account),
        plan_current=sa.select(
            count().filter(~table.c.is_deleted & covered).label("active"),
            count().filter(~table.c.is_deleted & vanishing).label("vanished"),
        ).where(table.c.account == account),
        upsert=_upsert_changed(spec, stage, dialect, account, now),
        mark_vanished=sa.update(table)
        .where(table.c.account == account, ~table.c.is_deleted, vanishing)
        .values(is_deleted=True, deleted_at=now, synced_at=now),
        vanished_ids=sa.select(key)
        .where(table.c.account == account, ~table.c.is_deleted, vanishing)
        .order_by(key),
        totals=sa.select(count().filter(~table.c.is_deleted), count()).where(
            table.c.account == account
        ),
    )


def _plan_staged(spec: Entity, stage: sa.Table, account: Any) -> sa.Executable:
    """What applying the stage would do to the rows it names, counted."""
    existing = entity_table(spec).alias("existing")
    joined = stage.outerjoin(
        existing,
        sa.and_(existing.c.account == account, *(existing.c[k] == stage.c[k] for k in spec.keys)),
    )
    known = existing.c[spec.key].is_not(None)
    was_deleted, is_deleted = existing.c.is_deleted, stage.c.is_deleted
    differs = _content_differs(spec, existing.c, stage.c) | (was_deleted != is_deleted)
    count = sa.func.count
    return sa.select(
        count().filter(~known).label("inserted"),
        count().filter(known & differs & ~(is_deleted & ~was_deleted)).label("updated"),
        count().filter(known & is_deleted & ~was_deleted).label("flagged"),
        count().filter(known & was_deleted & ~is_deleted).label("restored"),
        count()
        .filter(known & ~differs & existing.c.raw.is_distinct_from(stage.c.raw))
        .label("refreshed"),
    ).select_from(joined)


def _content_differs(spec: Entity, old: Any, new: Any) -> sa.ColumnElement[bool]:
    """Whether any typed field differs: the content that decides a rewrite and ``updated_at``.

    Typed values, not ``raw``, are compared because Poster sends one object with different
    wire types from its list and single methods; ``raw`` is rewritten along with a change.
    """
    return sa.or_(
        *(old[f].is_distinct_from(new[f]) for f in spec.field_names if f not in spec.keys)
    )


def _upsert_changed(
    spec: Entity, stage: sa.Table, dialect: str, account: Any, now: Any
) -> sa.Executable:
    """Insert new rows and rewrite rows whose content or deletion state differs; no others."""
    table = entity_table(spec)
    fields = list(spec.field_names)
    source = sa.select(
        account,
        *(stage.c[f] for f in fields),
        stage.c.raw,
        stage.c.is_deleted,
        sa.case((stage.c.is_deleted, now), else_=sa.null()),
        now,
        now,
        now,
    ).where(sa.true())  # SQLite needs a WHERE to parse INSERT … SELECT … ON CONFLICT
    columns = ["account", *fields, *BOOKKEEPING_COLUMNS]
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    insert = insert.from_select(columns, source)
    new = insert.excluded
    content_changed = _content_differs(spec, table.c, new)
    return insert.on_conflict_do_update(
        index_elements=[table.c.account, *(table.c[k] for k in spec.keys)],
        set_={
            **{f: new[f] for f in fields if f not in spec.keys},
            "raw": new.raw,
            "is_deleted": new.is_deleted,
            "deleted_at": sa.case(
                (new.is_deleted, sa.func.coalesce(table.c.deleted_at, new.deleted_at)),
                else_=sa.null(),
            ),
            "updated_at": sa.case((content_changed, new.updated_at), else_=table.c.updated_at),
            "synced_at": new.synced_at,
        },
        # `raw` is compared too, so fields the catalogue does not type are kept current;
        # only typed content moves `updated_at`.
        where=content_changed
        | table.c.is_deleted.is_distinct_from(new.is_deleted)
        | table.c.raw.is_distinct_from(new.raw),
    )


def active_scopes(conn: Connection, spec: Entity, account: str) -> set[int]:
    """The scopes (stock: storages) that hold active rows of ``account``'s ``spec``."""
    if spec.scope is None:
        return set()
    table = entity_table(spec)
    scope = table.c[spec.scope]
    query = sa.select(scope).where(table.c.account == account, ~table.c.is_deleted).distinct()
    return set(conn.execute(query).scalars())


@contextmanager
def _connected(bind: Engine | Connection) -> Iterator[Connection]:
    """``bind`` itself if it is a connection, else one of the engine's for the call."""
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as conn:
        yield conn


def _apply(
    bind: Engine | Connection,
    spec: Entity,
    account: str,
    records: Iterable[PosterRecord],
    *,
    missing: Collection[int] | None,
    now: datetime,
    guard: DeletionGuard | None,
    allow_mass_delete: bool,
    run_id: str | None,
    in_transaction: Callable[[Connection], int] | None = None,
    live_in_poster: Callable[[list[int]], list[PosterRecord]] | None = None,
    scopes: Collection[int] | None = None,
    window: tuple[datetime, datetime] | None = None,
    kind: SyncKind | None = None,
) -> SyncReport:
    """Stage ``records`` and apply them in one transaction; ``missing`` None replaces every
    row (of ``scopes`` and ``window``, when given) by ``records``.

    ``bind`` is best the connection that holds the pair's sync lock
    (:func:`~poster_pipeline.warehouse.locks.sync_lock`); an engine lends one for the call.
    """
    tally = _Tally(spec)
    stage = _stage_table(spec)
    params: dict[str, Any] = {
        "sync_account": account,
        "sync_now": now,
        "missing_ids": sorted(missing or ()),
        "scope_ids": sorted(scopes or ()),
    }
    if window is not None:
        params["window_from"], params["window_to"] = window
    kind = kind or (SyncKind.FULL if missing is None else SyncKind.PARTIAL)
    with _connected(bind) as conn:
        # Before the transaction: the request behind a stream is made (and retried) first.
        numbered = tally.number(_started(conn, records))
        postgres = conn.dialect.name == "postgresql"
        statements = _statements(
            spec, conn.dialect.name, missing is None, scopes is not None, window is not None
        )
        with conn.begin():
            conn.exec_driver_sql(_create_stage_sql(spec, conn.dialect))
            if postgres:
                _copy_stage(conn, stage, spec, numbered)
            else:
                _insert_stage(conn, stage, numbered)
            _index_stage(conn, stage, spec.keys, rows=tally.fetched, repeated=tally.duplicates > 0)
            plan = _Plan(
                **conn.execute(statements.plan_staged, params).one()._asdict(),
                **conn.execute(statements.plan_current, params).one()._asdict(),
            )
            refused = guard is not None and guard.refuses(
                active=plan.active, to_delete=plan.to_delete
            )
            if refused and guard is not None and not allow_mass_delete:
                raise MassDeleteRefused(spec.name, account, plan.to_delete, plan.active, guard)
            if plan.vanished and guard and live_in_poster and not allow_mass_delete:
                vanished = list(conn.execute(statements.vanished_ids, params).scalars())
                moved_checked = window is not None and len(vanished) <= MOVED_CHECK_LIMIT
                asked = vanished if moved_checked else sample_evenly(vanished, guard.sample_size)
                live = live_in_poster(asked)
                moved = [r for r in live if window and not _inside(spec, r, window)]
                if len(moved) < len(live) or (live and not moved_checked):
                    raise AbsenceRefuted(
                        spec.name, account, plan.to_delete, plan.active, len(live), len(asked)
                    )
                if moved:  # staged like the list's records: updated, no longer vanished
                    _insert_stage(conn, stage, tally.number(moved))
                    plan = _Plan(
                        **conn.execute(statements.plan_staged, params).one()._asdict(),
                        **conn.execute(statements.plan_current, params).one()._asdict(),
                    )
            if plan.rewrites:
                conn.execute(statements.upsert, params)
            if plan.vanished:
                conn.execute(statements.mark_vanished, params)
            if not postgres:
                stage.drop(conn)  # PostgreSQL drops it at commit
            active, total = conn.execute(statements.totals, params).one()
            record_success(
                conn, spec.name, account, kind, now=now, active=active, total=total, run_id=run_id
            )
            settled = in_transaction(conn) if in_transaction else 0
    return SyncReport(
        entity=spec.name,
        account=account,
        fetched=tally.fetched,
        inserted=plan.inserted,
        updated=plan.updated,
        marked_deleted=plan.to_delete,
        restored=plan.restored,
        unchanged=tally.distinct - plan.inserted - plan.updated - plan.flagged,
        duplicates=tally.duplicates,
        active_before=plan.active,
        active_total=active,
        rows_total=total,
        guard_overridden=refused,
        kind=kind,
        settled_events=settled,
    )


def full_sync(
    bind: Engine | Connection,
    spec: Entity,
    account: str,
    records: Iterable[PosterRecord],
    *,
    now: datetime,
    guard: DeletionGuard | None = None,
    allow_mass_delete: bool = False,
    run_id: str | None = None,
    live_in_poster: Callable[[list[int]], list[PosterRecord]] | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> SyncReport:
    """Make the warehouse match ``records``, Poster's complete list of ``spec`` for ``account``
    (for an entity Poster lists by date: its list of ``window``, [from, to), whose rows
    alone can vanish).

    Raises :class:`MassDeleteRefused`, with nothing changed, when the guard (default: over 50 %
    of at least 20 active rows) refuses and ``allow_mass_delete`` is false. Before rows that
    vanished from the list are marked deleted, ``live_in_poster`` is given a sample of their
    ids and answers the records Poster still has live: any, and :class:`AbsenceRefuted` is
    raised. With a ``window``, every vanished row is asked for (up to
    :data:`MOVED_CHECK_LIMIT`): one Poster still has with a date outside the window was moved
    there (its webhook lost), and is updated instead of deleted; one inside it means the list
    was cut short.
    """
    return _apply(
        bind,
        spec,
        account,
        records,
        missing=None,
        now=now,
        guard=guard or DeletionGuard(),
        allow_mass_delete=allow_mass_delete,
        run_id=run_id,
        live_in_poster=live_in_poster,
        window=window,
    )


def partial_sync(
    bind: Engine | Connection,
    spec: Entity,
    account: str,
    records: Iterable[PosterRecord],
    *,
    missing: Collection[int],
    now: datetime,
    run_id: str | None = None,
    in_transaction: Callable[[Connection], int] | None = None,
    scopes: Collection[int] | None = None,
) -> SyncReport:
    """Apply re-fetched objects: upsert ``records`` and mark deleted the ``missing`` ids (Poster
    answered not found); other rows are untouched. ``in_transaction`` runs inside the same
    transaction (the queue settles the run's events there) and returns how many it settled.

    For an entity Poster lists by scope (stock), ``scopes`` are the scopes whose whole lists
    ``records`` are: their rows ``records`` leave out are marked deleted, ``missing`` is unused.
    """
    return _apply(
        bind,
        spec,
        account,
        records,
        missing=None if scopes is not None else missing,
        scopes=scopes,
        kind=SyncKind.PARTIAL,
        now=now,
        guard=None,
        allow_mass_delete=False,
        run_id=run_id,
        in_transaction=in_transaction,
    )
