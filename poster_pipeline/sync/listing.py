"""What a full sync reads from Poster, for each way Poster lists an entity.

Most entities are one list call. Two are not:

- **stock** is listed one storage at a time (``storage.getStorageLeftovers?storage_id=N``). A
  full sync asks for the storages first and then streams every live storage's list, one call
  each, into the one load transaction: a storage whose call fails fails the whole sync and
  nothing changes. Stock rows of a storage that is no longer live are marked deleted, but
  absence is evidence, not proof: when a storage that has stock rows is missing from the
  storages list altogether (rather than listed with ``delete`` "1"), it is asked for with
  ``storage.getStorage``; if Poster still has it live, the storages list was cut short and the
  sync refuses (:class:`StoragesListCutShort`) before any stock is read. An empty storages
  list is refused outright: every Poster account has a storage.
- **supplies** are listed by date window (``storage.getSupplies?dateFrom=&dateTo=``); a sync
  reads a rolling window, or history from a given date, and judges absence only inside what
  it read (:func:`supply_window`).
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy.engine import Connection

from poster_pipeline.catalogue import Entity, entity
from poster_pipeline.poster.client import PosterClient
from poster_pipeline.poster.errors import PosterNotFoundError, PosterProtocolError
from poster_pipeline.poster.records import PosterRecord
from poster_pipeline.warehouse.load import active_scopes

__all__ = [
    "Listing",
    "StoragesListCutShort",
    "full_listing",
    "scoped_records",
    "supply_window",
]

STORAGES = entity("storages")
POSTER_DATE = "%Y%m%d"


class StoragesListCutShort(PosterProtocolError):
    """The storages list left out a storage Poster still has: stock is not judged on it."""


@dataclass(frozen=True)
class Listing:
    """The records of a full sync, and the window they cover ([from, to), None: everything)."""

    records: Generator[PosterRecord, None, None]
    window: tuple[datetime, datetime] | None = None


def supply_window(today: date, *, days: int, since: date | None = None) -> tuple[date, date]:
    """The dates a supplies sync reads, both inclusive as Poster takes them: the last ``days``
    days up to ``today`` (UTC), or from ``since`` when history is asked for."""
    if days < 1:
        raise ValueError("the supplies window must be at least 1 day")
    first = since if since is not None else today - timedelta(days=days - 1)
    if first > today:
        raise ValueError(f"since {first.isoformat()} is after today ({today.isoformat()})")
    # Through tomorrow: `today` is UTC's, and a restaurant east of UTC may be a day ahead.
    return first, today + timedelta(days=1)


def scoped_records(
    client: PosterClient,
    spec: Entity,
    scope_ids: Iterable[int],
    must_list: Collection[int] = (),
) -> Generator[PosterRecord, None, None]:
    """Each scope's list in turn, as one stream (one call per scope, made as it is reached).

    A scope in ``must_list`` (a storage that has stock rows) that lists nothing fails the
    stream: with zero balances asked for, a storage lists every ingredient, so an empty answer
    is a fault, not a storage emptied of every ingredient at once (as the webhook path judges
    it too, :func:`~poster_pipeline.poster.fetch.fetch_objects`)."""
    for scope_id in scope_ids:
        listed = 0
        for record in client.iter_list(spec, **{str(spec.scope): scope_id}):
            listed += 1
            yield record
        if not listed and scope_id in must_list:
            raise PosterProtocolError(
                f"{spec.scope} {scope_id} has stock rows but listed nothing; stock was not "
                "changed. If it really holds no ingredient, run the sync again with "
                "allow_mass_delete: true",
                method=spec.list_method,
                account=client.account,
            )


def full_listing(
    client: PosterClient,
    spec: Entity,
    conn: Connection,
    account: str,
    *,
    today: date,
    window_days: int,
    since: date | None = None,
    confirm_absence: bool = True,
) -> Listing:
    """What a full sync of ``spec`` reads; checks on the storages list are made here, before
    any stock is read (``conn``: the warehouse, for the storages that have stock rows).
    ``confirm_absence`` false (a forced ``allow_mass_delete`` sync) skips asking Poster for
    the storages missing from the list."""
    if spec.scope is not None:
        live, held = _live_storages(client, spec, conn, account, confirm_absence)
        return Listing(scoped_records(client, spec, live, held if confirm_absence else ()))
    if spec.window_field is not None:
        first, last = supply_window(today, days=window_days, since=since)
        records = client.iter_list(
            spec, dateFrom=first.strftime(POSTER_DATE), dateTo=last.strftime(POSTER_DATE)
        )
        end = datetime.combine(last + timedelta(days=1), time())
        return Listing(records, window=(datetime.combine(first, time()), end))
    return Listing(client.iter_list(spec))


def _live_storages(
    client: PosterClient, spec: Entity, conn: Connection, account: str, confirm_absence: bool
) -> tuple[list[int], set[int]]:
    """The live storages to read stock of, once the storages list is judged trustworthy, and
    the storages that have stock rows in the warehouse."""
    storages = client.fetch_list(STORAGES)
    if not storages:
        raise PosterProtocolError(
            "the storages list came back empty; stock was not read",
            method=STORAGES.list_method,
            account=client.account,
        )
    listed = {record.id for record in storages}
    held = active_scopes(conn, spec, account)
    conn.commit()  # the sync lock is the session's; no transaction stays open while Poster works
    for storage_id in sorted(held - listed) if confirm_absence else ():
        try:
            still = not client.fetch_one(STORAGES, storage_id).is_deleted
        except PosterNotFoundError:
            still = False
        if still:
            raise StoragesListCutShort(
                f"storage {storage_id} has stock rows and is missing from the storages list, "
                "but Poster still has it: the list was cut short, so stock was not changed. If "
                "the storage is really gone, run the sync again with allow_mass_delete: true",
                method=STORAGES.list_method,
                account=client.account,
            )
    return sorted(record.id for record in storages if not record.is_deleted), held
