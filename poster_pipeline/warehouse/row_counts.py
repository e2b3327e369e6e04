"""How many rows of an account each entity table holds, active and marked deleted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.catalogue import Entity
from poster_pipeline.warehouse.schema import entity_table

__all__ = ["RowCounts", "row_counts"]


@dataclass(frozen=True)
class RowCounts:
    """An entity table's rows of one account: ``active`` ones, and those marked ``deleted``
    (kept, never dropped)."""

    active: int
    deleted: int


def row_counts(engine: Engine, account: str, entities: Iterable[Entity]) -> dict[str, RowCounts]:
    """``account``'s row counts in each of ``entities``' tables, by entity name (zeros for a
    table without its rows)."""
    counts: dict[str, RowCounts] = {}
    with engine.connect() as conn:
        for spec in entities:
            table = entity_table(spec)
            active, total = conn.execute(
                sa.select(sa.func.count().filter(~table.c.is_deleted), sa.func.count()).where(
                    table.c.account == account
                )
            ).one()
            counts[spec.name] = RowCounts(active=active, deleted=total - active)
    return counts
