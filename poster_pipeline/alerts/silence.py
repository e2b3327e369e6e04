"""Silence: an account's entity that no full sync has refreshed for too long, whatever the cause.

A sync that fails loudly raises a run-failure alert. Silence is the other case: nothing runs
at all (the daemon is off, the automation is paused, the schedule stopped, a bug skips an
account), so nothing fails and nobody hears. A pair (active account × catalogue entity) is
*silent* when its last successful full sync is :data:`SILENCE_FACTOR` times the smart-sync
window ago or more (48 h with the default 24 h): smart sync alone would have run one by then.

Pure (no I/O, time is a parameter): the warehouse side is
:mod:`poster_pipeline.warehouse.full_syncs`, the sending side
:mod:`poster_pipeline.alerts.silence_notify`.

When silence is measured from
    The last successful full sync. A pair never fully synced is measured from when its account
    was connected, so a new account has the whole threshold to sync before it alerts. Two
    more grace periods come from what the sensor saw (its cursor, :class:`SilenceCursor`): an
    account that became active again (reactivated) is measured from then at the earliest, and
    a pair never synced from when the sensor first saw its entity in the catalogue (so an
    entity added by a release does not alert at once for every account, and neither do pairs
    never synced during the first threshold after the sensor is deployed). Deactivated
    accounts are not watched.

How often
    A silent pair alerts once, then again every threshold while it stays silent (the period
    is the threshold itself). State: ``alerts_sent`` rows ``silence:<account>:<entity>``.
    Once the pair is not silent any more (a full sync worked, the account was deactivated,
    the entity left the catalogue) the row is deleted, so a new silence alerts at once.
    One evaluation sends one summary, however many pairs went silent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.warehouse.full_syncs import FullSyncState

__all__ = [
    "KEY_PREFIX",
    "SILENCE_FACTOR",
    "SilenceCursor",
    "SilenceDecision",
    "SilentPair",
    "decide",
    "observe",
    "silence_alert",
    "silence_key",
    "silence_threshold",
]

#: Silent after this many smart-sync windows without a successful full sync.
SILENCE_FACTOR = 2
KEY_PREFIX = "silence:"
#: Pairs listed one per line in an alert; the rest are counted (a chat message has a limit).
LISTED_PAIRS = 50
LISTED_ACCOUNTS = 10
ERROR_CHARS = 200


def silence_threshold(smart_sync_window: timedelta) -> timedelta:
    """How long a pair may go without a successful full sync before it is silent."""
    if smart_sync_window <= timedelta(0):
        raise ValueError(f"the smart-sync window must be positive, not {smart_sync_window}")
    return SILENCE_FACTOR * smart_sync_window


def silence_key(account: str, entity: str) -> str:
    """The ``alerts_sent`` key of a pair (entity names hold no colon; account names may)."""
    return f"{KEY_PREFIX}{account}:{entity}"


def _pair_of(key: str) -> tuple[str, str] | None:
    if not key.startswith(KEY_PREFIX) or ":" not in key[len(KEY_PREFIX) :]:
        return None
    account, _, entity = key[len(KEY_PREFIX) :].rpartition(":")
    return account, entity


@dataclass(frozen=True)
class SilenceCursor:
    """What the sensor saw at its previous evaluation, for the grace periods.

    ``active`` are the accounts active then (None before the first evaluation: every account
    counts as known, none as just reactivated); ``entities`` the catalogue entities with the
    evaluation that first saw each; ``activated`` the accounts seen becoming active, with when,
    kept for one threshold.
    """

    active: frozenset[str] | None = None
    entities: Mapping[str, datetime] = field(default_factory=dict)
    activated: Mapping[str, datetime] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "active": None if self.active is None else sorted(self.active),
                "entities": {name: at.isoformat() for name, at in sorted(self.entities.items())},
                "activated": {name: at.isoformat() for name, at in sorted(self.activated.items())},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> SilenceCursor:
        """Parse a cursor; raises ``ValueError`` for one this code did not write."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            active = data["active"]
            return cls(
                active=None if active is None else frozenset(str(name) for name in active),
                entities=_times(data["entities"]),
                activated=_times(data["activated"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a silence cursor: {text[:80]!r} ({exc})") from None


def _times(data: Mapping[str, str]) -> dict[str, datetime]:
    times = {str(name): datetime.fromisoformat(at) for name, at in data.items()}
    if any(at.tzinfo is None for at in times.values()):
        raise ValueError("times without a zone")
    return {name: at.astimezone(UTC) for name, at in times.items()}


def observe(
    cursor: SilenceCursor,
    *,
    active: Iterable[str],
    entities: Iterable[str],
    now: datetime,
    threshold: timedelta,
) -> SilenceCursor:
    """The cursor after an evaluation at ``now`` that found ``active`` accounts and the
    catalogue's ``entities``: new entities and newly active accounts are noted with ``now``;
    reactivations older than ``threshold`` and entities no longer in the catalogue are
    dropped (their grace is over, or moot)."""
    active_now = frozenset(active)
    names = list(entities)
    activated = {
        account: at
        for account, at in cursor.activated.items()
        if account in active_now and now - at < threshold
    }
    if cursor.active is not None:
        for account in active_now - cursor.active:
            activated[account] = now
    seen = {name: cursor.entities.get(name, now) for name in names}
    return SilenceCursor(active_now, seen, activated)


@dataclass(frozen=True)
class SilentPair:
    """A silent pair: ``since`` is when its silence started (its last successful full sync,
    or the start of its grace when later); the rest is what the alert shows."""

    account: str
    entity: str
    since: datetime
    last_full_sync_at: datetime | None
    last_full_attempt_at: datetime | None
    last_full_error: str | None

    @property
    def key(self) -> str:
        return silence_key(self.account, self.entity)


@dataclass(frozen=True)
class SilenceDecision:
    """What an evaluation does.

    ``due``: silent pairs to alert now (never alerted, or not within a period); ``silent``:
    all silent pairs, alerted or not; ``clear``: ``alerts_sent`` keys of pairs not silent any
    more; ``recovered``: those of them whose account is still active and fully synced since
    (the others were deactivated or left the catalogue), as (account, entity).
    """

    due: tuple[SilentPair, ...] = ()
    silent: tuple[SilentPair, ...] = ()
    clear: tuple[str, ...] = ()
    recovered: tuple[tuple[str, str], ...] = ()


def silent_since(state: FullSyncState, cursor: SilenceCursor) -> datetime:
    """When the pair's silence started (see the module docstring)."""
    starts = [state.last_full_sync_at or state.connected_at]
    if state.last_full_sync_at is None and state.entity in cursor.entities:
        starts.append(cursor.entities[state.entity])
    if state.account in cursor.activated:
        starts.append(cursor.activated[state.account])
    return max(starts)


def decide(
    states: Sequence[FullSyncState],
    alerted: Mapping[str, datetime],
    cursor: SilenceCursor,
    *,
    now: datetime,
    threshold: timedelta,
) -> SilenceDecision:
    """Which pairs of ``states`` are silent at ``now`` and which of them to alert, given the
    silence alerts already sent (``alerted``: key → when) and the grace periods of ``cursor``
    (already updated by :func:`observe` for this evaluation)."""
    silent: list[SilentPair] = []
    for state in states:
        since = silent_since(state, cursor)
        if now - since >= threshold:
            silent.append(
                SilentPair(
                    state.account,
                    state.entity,
                    since,
                    state.last_full_sync_at,
                    state.last_full_attempt_at,
                    state.last_full_error,
                )
            )
    due = [p for p in silent if p.key not in alerted or now - alerted[p.key] >= threshold]
    silent_keys = {p.key for p in silent}
    clear = sorted(key for key in alerted if key not in silent_keys)
    synced = {
        (s.account, s.entity)
        for s in states
        if s.last_full_sync_at is not None and now - s.last_full_sync_at < threshold
    }
    recovered = [pair for pair in map(_pair_of, clear) if pair is not None and pair in synced]
    return SilenceDecision(tuple(due), tuple(silent), tuple(clear), tuple(recovered))


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24} d {hours % 24} h" if hours >= 48 else f"{hours} h"


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


def _pair_line(pair: SilentPair, now: datetime) -> str:
    last = _when(pair.last_full_sync_at) if pair.last_full_sync_at else "never"
    line = (
        f"- {pair.account} / {pair.entity}: silent since {_when(pair.since)} "
        f"({_age(now - pair.since)}); last successful full sync: {last}"
    )
    if pair.last_full_error:
        error = " ".join(pair.last_full_error.split())
        if len(error) > ERROR_CHARS:
            error = error[:ERROR_CHARS] + " …"
        attempted = _when(pair.last_full_attempt_at) if pair.last_full_attempt_at else "?"
        line += f"; last full attempt {attempted} failed: {error}"
    elif pair.last_full_attempt_at is None:
        line += "; no full sync ever attempted"
    return line


def _listed(names: Sequence[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … ({len(names)} accounts)"


def silence_alert(
    due: Sequence[SilentPair],
    recovered: Sequence[tuple[str, str]] = (),
    *,
    now: datetime,
    threshold: timedelta,
    link: str | None = None,
) -> Alert | None:
    """One alert about the pairs that went silent (``due``) and, as a note, those that
    recovered; None when there is neither."""
    if not due and not recovered:
        return None
    window = threshold / SILENCE_FACTOR
    details: list[str] = []
    if due:
        count = len(due)
        pairs = (
            "1 account × entity pair has" if count == 1 else f"{count} account × entity pairs have"
        )
        subject = f"poster-pipeline: {pairs} not fully synced for {_hours(threshold)}"
        error = (
            f"{pairs} had no successful full sync for {_hours(threshold)} or more "
            f"({SILENCE_FACTOR} × the smart-sync window of {_hours(window)}): nothing synced "
            "them, or every full sync failed."
        )
        ordered = sorted(due, key=lambda p: (p.account, p.entity))
        details.append("Silent, by account and entity:")
        details += [_pair_line(pair, now) for pair in ordered[:LISTED_PAIRS]]
        if count > LISTED_PAIRS:
            details.append(f"… and {count - LISTED_PAIRS} more pairs.")
        details += [
            "",
            "Check that dagster-daemon runs, and that the smart_sync sensor and the "
            "nightly_full_sync schedule are on (Dagster UI → Automation) and cover these "
            "accounts. Each pair alerts again every "
            f"{_hours(threshold)} while it stays silent; a full sync that works ends it.",
        ]
        accounts = sorted({p.account for p in due})
        entities = tuple(sorted({p.entity for p in due}))
    else:
        count = len(recovered)
        subject = (
            f"poster-pipeline: {count} silent account × entity "
            f"{'pair' if count == 1 else 'pairs'} fully synced again"
        )
        error = "A full sync worked again after the silence alerted before."
        accounts = sorted({account for account, _ in recovered})
        entities = tuple(sorted({entity for _, entity in recovered}))
    if recovered:
        if due:
            details.append("")
        details.append("Recovered (fully synced again since the last alert):")
        listed = sorted(recovered)
        details += [f"- recovered: {a} / {e}" for a, e in listed[:LISTED_PAIRS]]
        if len(listed) > LISTED_PAIRS:
            details.append(f"… and {len(listed) - LISTED_PAIRS} more pairs.")
    return Alert(
        subject=subject,
        account=_listed(accounts, LISTED_ACCOUNTS),
        entities=entities,
        error=error,
        link=link,
        details=tuple(details),
    )
