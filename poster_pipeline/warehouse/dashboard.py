"""The operators' page's reads: one page of restaurants, their sync status, the queue.

Everything is paginated and filtered in SQL, so a page costs the same handful of queries
whether the warehouse holds 5 restaurants or 5,000: the count of matching accounts, one page
of their names, the ``sync_status`` rows of that page, the queue's counts (per status, and
per (account, entity) of the page) and the most recent dead events.

The grid's states are judged later, by the sync API's rules
(:func:`~poster_pipeline.http.sync_plan.describe_state`); the SQL filters here only have to
pick the same accounts: *failing* is any standing error, *stale* is any entity whose last
successful full sync is missing or older than the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.queue import DeadEvent, dead_events, queue_counts
from poster_pipeline.warehouse.schema import EventStatus, accounts, sync_status, webhook_events

__all__ = [
    "STATE_FILTERS",
    "AccountPage",
    "DeadEvent",
    "QueueOverview",
    "StateFilter",
    "account_page",
    "queue_overview",
]

StateFilter = Literal["all", "failing", "stale"]
STATE_FILTERS: tuple[StateFilter, ...] = ("all", "failing", "stale")
#: The queue statuses counted per (account, entity) on the grid: the events still to do.
CELL_STATUSES = (EventStatus.PENDING, EventStatus.CLAIMED, EventStatus.DEAD)


@dataclass(frozen=True)
class AccountPage:
    """``names``: the page's active accounts, by name; ``total``: how many match in all."""

    names: tuple[str, ...]
    total: int


@dataclass(frozen=True)
class QueueOverview:
    """``counts``: events by status (every status, zero included); ``oldest_pending_at``:
    when the longest-waiting pending event was received; ``cells``: pending, claimed and
    dead counts per (account, entity) of the page; ``dead``: the most recent dead events."""

    counts: dict[str, int]
    oldest_pending_at: datetime | None
    cells: dict[tuple[str, str], dict[str, int]]
    dead: tuple[DeadEvent, ...]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _state_condition(
    state: StateFilter, entities: Sequence[str], stale_before: datetime
) -> sa.ColumnElement[bool] | None:
    s = sync_status.c
    mine = sa.and_(s.account == accounts.c.account, s.entity.in_(list(entities)))
    if state == "failing":
        standing = sa.or_(s.last_full_error.is_not(None), s.last_partial_error.is_not(None))
        return sa.exists().where(mine, standing)
    if state == "stale":
        fresh = (
            sa.select(sa.func.count())
            .where(mine, s.last_full_sync_at >= stale_before)
            .scalar_subquery()
        )
        return fresh < len(entities)
    return None


def account_page(
    conn: Connection,
    *,
    entities: Sequence[str],
    name_contains: str = "",
    state: StateFilter = "all",
    stale_before: datetime,
    offset: int,
    limit: int,
) -> AccountPage:
    """One page of active accounts by name: those whose name contains ``name_contains``
    (case-insensitive, taken literally) and that are in ``state`` for any of ``entities``
    (*stale*: last full sync before ``stale_before`` or never)."""
    conditions: list[sa.ColumnElement[bool]] = [accounts.c.is_active]
    if name_contains:
        pattern = f"%{_escape_like(name_contains)}%"
        conditions.append(accounts.c.account.ilike(pattern, escape="\\"))
    if (condition := _state_condition(state, entities, stale_before)) is not None:
        conditions.append(condition)
    total = conn.execute(
        sa.select(sa.func.count()).select_from(accounts).where(*conditions)
    ).scalar_one()
    names = conn.execute(
        sa.select(accounts.c.account)
        .where(*conditions)
        .order_by(accounts.c.account)
        .offset(offset)
        .limit(limit)
    ).scalars()
    return AccountPage(tuple(names), total)


def queue_overview(engine: Engine, names: Sequence[str], *, dead_limit: int) -> QueueOverview:
    """The queue as the page shows it (see :class:`QueueOverview`); the counts by status are
    ``poster-pipeline queue status``'s. One connection at a time."""
    counts = queue_counts(engine)
    with engine.connect() as conn:
        return _overview(conn, counts, names, dead_limit)


def _overview(
    conn: Connection, counts: dict[str, int], names: Sequence[str], dead_limit: int
) -> QueueOverview:
    e = webhook_events.c
    oldest = conn.execute(
        sa.select(sa.func.min(e.received_at)).where(e.status == EventStatus.PENDING)
    ).scalar_one_or_none()
    cells: dict[tuple[str, str], dict[str, int]] = {}
    if names:
        query = (
            sa.select(e.account, e.entity, e.status, sa.func.count())
            .where(
                e.account.in_(list(names)),
                e.entity.is_not(None),
                e.status.in_(CELL_STATUSES),
            )
            .group_by(e.account, e.entity, e.status)
        )
        for account, entity, status, count in conn.execute(query):
            cells.setdefault((account, entity), dict.fromkeys(CELL_STATUSES, 0))[status] = count
    dead = dead_events(conn, newest=dead_limit)
    return QueueOverview(
        counts=counts,
        oldest_pending_at=None if oldest is None else as_utc(oldest),
        cells=cells,
        dead=tuple(reversed(dead)),  # the most recent first
    )
