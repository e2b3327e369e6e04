"""What the sync API decides, without I/O: which syncs a request selects, which of them to
queue and why the others are skipped, and how each (account, entity) is reported.

"Needs a sync" is :func:`~poster_pipeline.warehouse.freshness.needs_full_sync`, the rule
smart sync's automation condition uses, so the API never calls stale what Dagster calls
fresh. The API adds two rules of its own:

- a forced sync of one (account, entity) is accepted at most once per ``force_interval``
  (counted from the requests already stored, so every worker process agrees);
- a sync that is already asked for is not asked for again: a pending request absorbs a new
  one, and a smart request waits while a launched request's run has not yet recorded a full
  sync attempt (at most ``retry_after``, after which a run that died silently is retried).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from poster_pipeline.warehouse.freshness import RETRY_AFTER, needs_full_sync
from poster_pipeline.warehouse.status import SyncError, SyncState
from poster_pipeline.warehouse.sync_requests import NewSyncRequest, RequestHistory

__all__ = [
    "SelectionError",
    "Skipped",
    "SyncPlan",
    "SyncPolicy",
    "SyncSelection",
    "describe_state",
    "iso",
    "parse_selection",
    "plan_sync",
]

Pair = tuple[str, str]  # (account, entity)

_FIELDS = ("entities", "force", "accounts")


class SelectionError(Exception):
    """The request body does not fit (``status`` 422): a message that says what to send
    instead, and ``details`` for the client (the valid names)."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@dataclass(frozen=True)
class SyncSelection:
    """The accounts and entities a request selects, and whether it forces."""

    accounts: tuple[str, ...]
    entities: tuple[str, ...]
    force: bool = False

    def pairs(self) -> Iterator[Pair]:
        for account in self.accounts:
            for entity in self.entities:
                yield account, entity


@dataclass(frozen=True)
class SyncPolicy:
    """``window``: smart sync's freshness window; ``force_interval``: the least time between
    two forced syncs of one (account, entity); ``retry_after``: how long smart sync waits
    after a full sync attempt (automation's back-off, also the longest a launched request
    is trusted to be running)."""

    window: timedelta
    force_interval: timedelta = timedelta(seconds=60)
    retry_after: timedelta = RETRY_AFTER

    @property
    def history_horizon(self) -> timedelta:
        """How far back the requests that matter go."""
        return max(self.force_interval, self.retry_after)


@dataclass(frozen=True)
class Skipped:
    """Not queued, and why; ``retry_after`` (whole seconds) only when rate limited."""

    account: str
    entity: str
    reason: str
    retry_after: int | None = None


@dataclass(frozen=True)
class SyncPlan:
    queued: tuple[NewSyncRequest, ...] = ()  # stored as they are by the sync API
    skipped: tuple[Skipped, ...] = ()

    @property
    def rate_limited(self) -> bool:
        """Nothing to queue because every selected sync is rate limited (answer 429)."""
        return (
            not self.queued
            and bool(self.skipped)
            and all(s.retry_after is not None for s in self.skipped)
        )

    @property
    def retry_after(self) -> int | None:
        """When :attr:`rate_limited`: the seconds after which the same request is accepted
        in full (the longest wait of its syncs)."""
        if not self.rate_limited:
            return None
        return max(s.retry_after for s in self.skipped if s.retry_after is not None)


def _names(body: Mapping[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SelectionError(422, f"field {key!r} must be a list of strings")
    if not value:
        raise SelectionError(422, f"field {key!r} is empty; leave it out to select all {key}")
    return list(dict.fromkeys(value))  # drop repeats, keep the order


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def parse_selection(
    body: Any,
    *,
    accounts: Sequence[str],
    entities: Sequence[str],
    fixed_entity: str | None = None,
) -> SyncSelection:
    """The selection a decoded JSON body asks for (``None``: no body, all defaults; a field
    that is ``null`` is left out).

    ``accounts`` are the active accounts and ``entities`` the catalogue's, in the order
    answers list them. ``fixed_entity`` is the entity of a per-entity route, whose body may
    not name entities. Raises :class:`SelectionError` (422) naming the valid values.
    """
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise SelectionError(422, "the body must be a JSON object")
    allowed = [name for name in _FIELDS if not (fixed_entity and name == "entities")]
    extra = [key for key in body if key not in allowed]
    if extra:
        if fixed_entity and "entities" in extra:
            message = (
                f"this route syncs {fixed_entity} only; POST /api/poster/sync to choose entities"
            )
        else:
            message = f"unknown field {extra[0]!r}; the fields are {', '.join(allowed)}"
        raise SelectionError(422, message)
    force = body.get("force")
    if force is None:
        force = False
    if not isinstance(force, bool):
        raise SelectionError(422, "field 'force' must be true or false")

    chosen_entities = [fixed_entity] if fixed_entity else _names(body, "entities")
    if chosen_entities is None:
        chosen_entities = list(entities)
    if unknown := [name for name in chosen_entities if name not in entities]:
        raise SelectionError(
            422,
            f"unknown entity {_quoted(unknown)}; valid entities: {', '.join(entities)}",
            validEntities=list(entities),
        )
    chosen_accounts = _names(body, "accounts")
    if chosen_accounts is None:
        chosen_accounts = list(accounts)
    if unknown := [name for name in chosen_accounts if name not in accounts]:
        raise SelectionError(
            422,
            f"unknown or inactive account {_quoted(unknown)}; active accounts: "
            + (", ".join(accounts) or "none"),
            validAccounts=list(accounts),
        )
    # Answers list the syncs in the catalogue's and the account list's order.
    return SyncSelection(
        accounts=tuple(a for a in accounts if a in chosen_accounts),
        entities=tuple(e for e in entities if e in chosen_entities),
        force=force,
    )


# (unit, its seconds, the durations below which it is used)
_UNITS = (("s", 1, 120), ("min", 60, 120 * 60), ("h", 3600, 48 * 3600), ("d", 86400, math.inf))


def _span(delta: timedelta, *, round_up: bool = False) -> str:
    """A duration for a person: "40 s", "12 min", "5 h", "3 d". Rounded down (how long
    ago), or up (how long to wait, so that waiting that long is enough)."""
    total = max(0.0, delta.total_seconds())
    unit, size = next((unit, size) for unit, size, below in _UNITS if total < below)
    count = math.ceil(total / size) if round_up else math.floor(total / size)
    return f"{count} {unit}"


def _smart_skip(
    state: SyncState | None, seen: RequestHistory, *, now: datetime, policy: SyncPolicy
) -> str | None:
    """Why a smart request must not queue this sync, or None to queue it."""
    if seen.pending:
        return "already queued"
    last_attempt = state.last_full_attempt_at if state else None
    launched = seen.last_launched_at
    if (
        launched is not None
        and now - launched < policy.retry_after
        and (last_attempt is None or last_attempt < launched)
    ):
        return f"already requested {_span(now - launched)} ago; its sync has not finished yet"
    last_sync = state.last_full_sync_at if state else None
    if needs_full_sync(
        last_sync, last_attempt, now=now, window=policy.window, retry_after=policy.retry_after
    ):
        return None
    if last_sync is not None and now - last_sync < policy.window:
        return f"fresh: last full sync {_span(now - last_sync)} ago"
    assert last_attempt is not None  # stale, so needs_full_sync said no because of a recent try
    wait = policy.retry_after - (now - last_attempt)
    return (
        f"backing off: the last full sync failed {_span(now - last_attempt)} ago; "
        f"smart sync retries in {_span(wait, round_up=True)} (force to retry now)"
    )


def plan_sync(
    selection: SyncSelection,
    states: Mapping[Pair, SyncState],
    history: Mapping[Pair, RequestHistory],
    *,
    now: datetime,
    policy: SyncPolicy,
) -> SyncPlan:
    """Decide, for every selected (account, entity), whether to queue a full sync.

    ``states`` holds the ``sync_status`` rows (a missing pair was never synced) and
    ``history`` the recent requests (see
    :func:`~poster_pipeline.warehouse.sync_requests.request_history`).
    """
    queued: list[NewSyncRequest] = []
    skipped: list[Skipped] = []
    for account, entity in selection.pairs():
        seen = history.get((account, entity), RequestHistory())
        if selection.force:
            forced_at = seen.last_forced_at
            if forced_at is not None and now - forced_at < policy.force_interval:
                wait = math.ceil((policy.force_interval - (now - forced_at)).total_seconds())
                wait = max(wait, 1)
                reason = f"rate limited: forced {_span(now - forced_at)} ago, retry in {wait} s"
                skipped.append(Skipped(account, entity, reason, retry_after=wait))
            elif seen.pending:
                skipped.append(Skipped(account, entity, "already queued"))
            else:
                queued.append(NewSyncRequest(account, entity, force=True))
            continue
        reason_not = _smart_skip(states.get((account, entity)), seen, now=now, policy=policy)
        if reason_not is None:
            queued.append(NewSyncRequest(account, entity, force=False))
        else:
            skipped.append(Skipped(account, entity, reason_not))
    return SyncPlan(tuple(queued), tuple(skipped))


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(error: SyncError | None) -> dict[str, Any] | None:
    return None if error is None else {"message": error.message, "at": iso(error.at)}


def describe_state(state: SyncState | None, *, now: datetime, policy: SyncPolicy) -> dict[str, Any]:
    """One (account, entity) as ``GET /api/poster/sync`` reports it.

    ``age`` is whole minutes since the last successful full sync. ``lastFullError`` and
    ``lastPartialError`` are the standing failure of each kind (cleared when that kind next
    succeeds; a full success clears both); ``lastSyncSuccess`` is false while either stands,
    and ``lastError``, kept for the seed's clients, is the more recent one's message. A
    never-synced pair has nulls and ``needsSync: true``.
    """
    state = state or SyncState()
    last_sync = state.last_full_sync_at
    last_error = state.last_error
    return {
        "lastSyncAt": iso(last_sync),
        "lastPartialSyncAt": iso(state.last_partial_sync_at),
        "needsSync": needs_full_sync(
            last_sync,
            state.last_full_attempt_at,
            now=now,
            window=policy.window,
            retry_after=policy.retry_after,
        ),
        "age": None if last_sync is None else max(0, int((now - last_sync).total_seconds() // 60)),
        "lastSyncSuccess": state.last_success,
        "lastError": None if last_error is None else last_error.message,
        "lastFullError": _error(state.full_error),
        "lastPartialError": _error(state.partial_error),
    }
