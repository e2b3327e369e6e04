"""Re-fetching the objects a batch of webhooks named, at the fewest API calls, object by object.

Poster's single getters cost one call per object; its list methods return everything in one
call (not paginated, docs/poster-api.md §2). A burst of events on one entity is therefore fetched
with the list once it would take more than ``single_fetch_limit`` single calls, and always for
entities without a single getter (suppliers).

Each object has its own outcome, so one bad object never holds back the others:

- fetched: Poster answered it;
- gone: Poster does not have it, and that is *confirmed*: its latest event says ``removed``,
  or a second answer (or, fetched by list, the single getter) agrees. A single not-found
  (``response: false``, error 32) is not proof: Poster has been seen answering one for a live
  object, and a row wrongly marked deleted is a business error;
- failed: Poster answered an error for it (after the client's retries), or its not-found could
  not be confirmed: its events are retried later, its row is left as it is.

An entity listed by scope (stock) is fetched a scope at a time: the named objects are scopes
(storages), each re-read whole with one list call however many events named it, and each
scope's list replaces its rows. A scope whose list fails, or comes back empty (with zero
balances asked for, a storage lists every ingredient), is failed; the full sync, which checks
the storages list, is what retires the stock of a storage that is gone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum

from poster_pipeline.catalogue import Entity
from poster_pipeline.poster.client import PosterClient
from poster_pipeline.poster.errors import PosterError, PosterNotFoundError, PosterProtocolError
from poster_pipeline.poster.records import PosterRecord

__all__ = ["FetchStrategy", "Fetched", "fetch_objects", "live_in_poster", "uses_list"]


class FetchStrategy(StrEnum):
    """How a partial sync fetched the named objects: one by one through the single getter,
    with the list method, or one list call per named scope (stock: per storage)."""

    SINGLE = "single"
    LIST = "list"
    SCOPE = "scope"


@dataclass(frozen=True)
class Fetched:
    """What became of each named object (see the module's docstring)."""

    records: list[PosterRecord]
    missing: frozenset[int]  # gone, confirmed
    strategy: FetchStrategy
    failed: dict[int, str] = field(default_factory=dict)  # object id → why


def uses_list(spec: Entity, count: int, single_fetch_limit: int) -> bool:
    """Whether ``count`` named objects are cheaper to fetch with the list method. Never for an
    entity listed by date window (supplies): its list leaves out what is outside the window."""
    if spec.window_field is not None and spec.single_method is not None:
        return False
    return spec.single_method is None or count > single_fetch_limit


def fetch_objects(
    client: PosterClient,
    spec: Entity,
    ids: Collection[int],
    *,
    removed: Collection[int] = (),
    single_fetch_limit: int = 10,
) -> Fetched:
    """Fetch ``ids``; ``removed`` are those whose latest event says Poster removed them.

    A failure of the list call itself (it is one answer for every object) raises the typed
    :class:`PosterError`; a failure of one object's call is that object's outcome.
    """
    wanted, removed = frozenset(ids), frozenset(removed)
    if spec.scope is not None:
        return _by_scope(client, spec, sorted(wanted))
    if uses_list(spec, len(wanted), single_fetch_limit):
        records = _from_list(client, spec, wanted)
        absent = wanted - {r.id for r in records}
        if spec.single_method is None:
            # The list is the only evidence Poster offers for these entities.
            return Fetched(records, frozenset(absent), FetchStrategy.LIST)
        # Confirm what the list left out, unless its events said removed; a list missing many
        # named objects is suspect (cut short), so those wait for a later attempt.
        to_confirm = sorted(absent - removed)
        confirmed: list[PosterRecord] = []
        missing, failed = set(absent & removed), {}
        if len(to_confirm) > single_fetch_limit:
            reason = f"{len(to_confirm)} named objects missing from the list: not trusted"
            failed = dict.fromkeys(to_confirm, reason)
        else:
            got, gone, failed = _one_by_one(client, spec, to_confirm)
            confirmed, missing = got, missing | gone
        return Fetched(records + confirmed, frozenset(missing), FetchStrategy.LIST, failed)
    first, not_found, failed = _one_by_one(client, spec, sorted(wanted))
    # A second answer for a not-found whose events did not say removed.
    second, gone, failed_again = _one_by_one(client, spec, sorted(not_found - removed))
    return Fetched(
        first + second,
        frozenset((not_found & removed) | gone),
        FetchStrategy.SINGLE,
        {**failed, **failed_again},
    )


def live_in_poster(client: PosterClient, spec: Entity, ids: Iterable[int]) -> list[PosterRecord]:
    """The objects of ``ids`` Poster still has (live, not flagged deleted), asked one by one: a
    full sync's check that rows missing from a list are really gone. An error other than a
    not-found is raised: what cannot be checked is not taken as gone."""
    live = []
    for object_id in ids:
        with suppress(PosterNotFoundError):
            record = client.fetch_one(spec, object_id)
            if not record.is_deleted:
                live.append(record)
    return live


def _from_list(client: PosterClient, spec: Entity, wanted: frozenset[int]) -> list[PosterRecord]:
    records, listed = [], 0
    for record in client.iter_list(spec):  # streamed: only the named objects are kept
        listed += 1
        if record.id in wanted:
            records.append(record)
    if wanted and not listed:
        # An empty list would mark every named object deleted; Poster answering nothing is
        # likelier a fault than a wipe-out (the full sync's guard thinks so too).
        raise PosterProtocolError(
            "the list came back empty", method=spec.list_method, account=client.account
        )
    return records


def _by_scope(client: PosterClient, spec: Entity, scope_ids: Iterable[int]) -> Fetched:
    records: list[PosterRecord] = []
    failed: dict[int, str] = {}
    for scope_id in scope_ids:
        try:
            listed = client.fetch_list(spec, **{str(spec.scope): scope_id})
        except PosterError as exc:
            failed[scope_id] = str(exc)
            continue
        if not listed:
            failed[scope_id] = f"the {spec.list_method} list of {spec.scope} {scope_id} was empty"
            continue
        records += listed
    return Fetched(records, frozenset(), FetchStrategy.SCOPE, failed)


def _one_by_one(
    client: PosterClient, spec: Entity, ids: Iterable[int]
) -> tuple[list[PosterRecord], set[int], dict[int, str]]:
    """Single-getter answers: (records, not found, failed)."""
    records: list[PosterRecord] = []
    not_found: set[int] = set()
    failed: dict[int, str] = {}
    for object_id in ids:
        try:
            records.append(client.fetch_one(spec, object_id))
        except PosterNotFoundError:
            not_found.add(object_id)
        except PosterError as exc:
            failed[object_id] = str(exc)
    return records, not_found, failed
