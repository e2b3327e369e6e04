"""Re-fetching the objects a batch of webhooks named, at the fewest API calls.

Poster's single getters cost one call per object; its list methods return everything in one
call (not paginated, poster-api.md §2). A burst of events on one entity is therefore fetched
with the list once it would take more than ``single_fetch_limit`` single calls, and always for
entities without a single getter (suppliers).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from poster_pipeline.catalogue import Entity
from poster_pipeline.poster.client import PosterClient
from poster_pipeline.poster.errors import PosterNotFoundError, PosterProtocolError
from poster_pipeline.poster.records import PosterRecord

__all__ = ["Fetched", "fetch_objects", "uses_list"]


@dataclass(frozen=True)
class Fetched:
    """The named objects Poster returned, and the named ids it does not have (deleted)."""

    records: list[PosterRecord]
    missing: frozenset[int]
    strategy: str  # "single" or "list"


def uses_list(spec: Entity, count: int, single_fetch_limit: int) -> bool:
    """Whether ``count`` named objects are cheaper to fetch with the list method."""
    return spec.single_method is None or count > single_fetch_limit


def fetch_objects(
    client: PosterClient, spec: Entity, ids: Collection[int], *, single_fetch_limit: int = 10
) -> Fetched:
    wanted = frozenset(ids)
    if uses_list(spec, len(wanted), single_fetch_limit):
        records, listed = [], 0
        for record in client.iter_list(spec):  # streamed: only the named objects are kept
            listed += 1
            if record.id in wanted:
                records.append(record)
        if wanted and not listed:
            # An empty list would mark every named object deleted; Poster answering nothing
            # is likelier a fault than a wipe-out (the full sync's guard thinks so too).
            raise PosterProtocolError(
                "the list came back empty", method=spec.list_method, account=client.account
            )
        return Fetched(records, wanted - {r.id for r in records}, "list")
    records, missing = [], set()
    for object_id in sorted(wanted):
        try:
            records.append(client.fetch_one(spec, object_id))
        except PosterNotFoundError:
            missing.add(object_id)
    return Fetched(records, frozenset(missing), "single")
