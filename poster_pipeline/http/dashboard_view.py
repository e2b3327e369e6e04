"""What the operators' page shows, computed without I/O from what the warehouse returned.

Each cell of the grid (restaurant × entity) is the sync API's report of that pair
(:func:`~poster_pipeline.http.sync_plan.describe_state`: the same ``needsSync``, ``age`` and
standing errors as ``GET /api/poster/sync``), plus its queued events, its active rows and a
link to the asset partition in the Dagster UI. The entities are the catalogue's, so an entity
added there gets its column without a change here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode

from poster_pipeline.http.sync_plan import SyncPolicy, describe_state
from poster_pipeline.warehouse.status import SyncState

__all__ = ["ASSET_KEY_PREFIX", "Cell", "CellState", "Row", "build_rows", "dagster_link", "span"]

#: The asset keys are ``poster/<entity>`` (docs/design.md, "Fixed names").
ASSET_KEY_PREFIX = "poster"
CellState = Literal["ok", "stale", "never", "failed"]


def span(delta: timedelta) -> str:
    """A duration for a person, rounded down: "40 s", "12 min", "5 h", "3 d"."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size, below in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800)):
        if seconds < below:
            return f"{seconds // size} {unit}"
    return f"{seconds // 86400} d"


def dagster_link(base_url: str | None, entity: str, account: str) -> str | None:
    """The Dagster UI's page of the asset partition (``/assets/poster/<entity>?partition=…``,
    the URL Dagster 1.13's own partition links build); None without a base URL."""
    base = (base_url or "").strip().rstrip("/")
    if not base:
        return None
    query = urlencode({"partition": account, "view": "partitions"}, quote_via=quote)
    return f"{base}/assets/{ASSET_KEY_PREFIX}/{quote(entity, safe='')}?{query}"


@dataclass(frozen=True)
class Cell:
    """One (account, entity): ``report`` is the sync API's report of it (camelCase keys)."""

    account: str
    entity: str
    state: CellState
    report: Mapping[str, Any]
    rows_active: int | None
    queued: Mapping[str, int]
    link: str | None

    @property
    def age(self) -> str | None:
        """Time since the last successful full sync, for a person."""
        minutes = self.report["age"]
        return None if minutes is None else span(timedelta(minutes=minutes))


@dataclass(frozen=True)
class Row:
    account: str
    cells: tuple[Cell, ...]

    @property
    def failed(self) -> int:
        return sum(cell.state == "failed" for cell in self.cells)


def _cell_state(report: Mapping[str, Any]) -> CellState:
    if report["lastFullError"] or report["lastPartialError"]:
        return "failed"
    if report["lastSyncAt"] is None:
        return "never"
    return "stale" if report["needsSync"] else "ok"


def build_rows(
    names: Sequence[str],
    states: Mapping[tuple[str, str], SyncState],
    queued: Mapping[tuple[str, str], Mapping[str, int]],
    *,
    entities: Sequence[str],
    now: datetime,
    policy: SyncPolicy,
    dagster_url: str | None,
) -> list[Row]:
    """The grid: one row per name in ``names``' order, one cell per entity in ``entities``'
    order. A pair without a state in ``states`` was never synced."""
    grid = []
    for account in names:
        cells = []
        for entity in entities:
            state = states.get((account, entity))
            report = describe_state(state, now=now, policy=policy)
            cells.append(
                Cell(
                    account=account,
                    entity=entity,
                    state=_cell_state(report),
                    report=report,
                    rows_active=None if state is None else state.rows_active,
                    queued=queued.get((account, entity), {}),
                    link=dagster_link(dagster_url, entity, account),
                )
            )
        grid.append(Row(account, tuple(cells)))
    return grid
