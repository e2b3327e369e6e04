"""The webhook drain: the (account, entity) groups of queue claims, applied in one process.

A Dagster run per group costs a new process (about 1.5 CPU-s and 130 MB here) for 0.2 s of
work, and their number grows with restaurants × entities. The drain applies the groups of a
claim in one run instead: accounts concurrently, on a bounded pool of threads (the work is
mostly waiting for Poster and the database), and each account's groups one after another, so
one restaurant's calls stay within its own Poster throttle and never crowd out the others.

Given a way to take claims, a drain also keeps claiming newly due events for a while
(:class:`DrainLimits`): under a steady stream of webhooks one long run applies them within a
poll interval, instead of each waiting for a sensor tick and a new run process. A new claim is
taken while fewer than twice ``workers`` groups are in hand, and its groups join their
account's line, so a restaurant whose Poster is slow holds up only its own changes. Events a
busy drain leaves unclaimed coalesce: the next claim re-fetches each object once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache

from poster_pipeline.sync.procedure import (
    EXPECTED_FAILURES,
    PartialSyncResult,
    SyncServices,
    run_partial_sync,
)
from poster_pipeline.warehouse.queue import Claim, ClaimedEvent, EventGroup, group_claimed

__all__ = ["DrainLimits", "TakeClaim", "drain"]

log = logging.getLogger(__name__)

#: Takes a new claim on the due events (its events may be none).
TakeClaim = Callable[[], tuple[Claim, list[ClaimedEvent]]]


@dataclass(frozen=True)
class DrainLimits:
    """How a drain works and how long it keeps taking new claims.

    ``take_for`` seconds after it started, or ``idle_for`` seconds after the last claim that
    held events, a drain stops taking claims and ends when what it holds is applied.
    """

    workers: int = 8
    single_fetch_limit: int = 10
    lock_wait: float = 5.0
    take_for: float = 0.0
    idle_for: float = 10.0
    poll: float = 0.5
    renew_every: float = 60.0


class _Lines:
    """The groups waiting to be applied, one line per account; an account with a line has one
    task in the pool working through it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, deque[tuple[Claim, EventGroup]]] = {}
        self.stopping = False

    def join(self, claim: Claim, group: EventGroup) -> bool:
        """Queue ``group``; True when its account had no line (a task must start one)."""
        with self._lock:
            line = self._lines.get(group.account)
            if line is not None:
                line.append((claim, group))
                return False
            self._lines[group.account] = deque([(claim, group)])
            return True

    def next(self, account: str) -> tuple[Claim, EventGroup] | None:
        """The account's next group, or None (the line ends) when it is empty or stopping."""
        with self._lock:
            line = self._lines[account]
            if line and not self.stopping:
                return line.popleft()
            del self._lines[account]
            return None

    def abandon(self) -> list[tuple[Claim, EventGroup]]:
        """Stop every line; the groups no task started."""
        with self._lock:
            self.stopping = True
            left = [item for line in self._lines.values() for item in line]
            for line in self._lines.values():
                line.clear()
            return left


def drain(
    services: SyncServices,
    claim: Claim,
    claimed: Sequence[ClaimedEvent],
    *,
    run_id: str,
    limits: DrainLimits = DrainLimits(),
    take: TakeClaim | None = None,
) -> Iterator[PartialSyncResult]:
    """Apply the groups of ``claimed`` (see :func:`run_partial_sync`) and, given ``take``, of
    the claims it takes while ``limits`` allow; yields each result in the caller's thread
    (Dagster's event log is written from there). A failed group ends the taking, so that the
    failure is reported when what is held is applied, not minutes later. Groups no sync started
    when the drain stops early (an error, the caller closing the generator) are given back
    untried."""
    # Each account's token is read once per drain (a query and a decryption per group
    # otherwise); a token replaced meanwhile fails its group, which ends the taking.
    services = replace(services, token_for=cache(services.token_for))
    lines = _Lines()
    results: queue.Queue[tuple[Claim, PartialSyncResult] | BaseException] = queue.Queue()
    held: dict[str, Claim] = {}  # the claims with groups not yet applied, renewed as it goes
    remaining: Counter[str] = Counter()

    def work(account: str) -> None:
        try:
            while (item := lines.next(account)) is not None:
                owner, group = item
                result = run_partial_sync(
                    services,
                    owner,
                    group,
                    run_id=run_id,
                    single_fetch_limit=limits.single_fetch_limit,
                    lock_wait=limits.lock_wait,
                )
                results.put((owner, result))
        except BaseException as exc:  # run_partial_sync reports failures: this is a bug
            results.put(exc)

    pool = ThreadPoolExecutor(max_workers=max(1, limits.workers), thread_name_prefix="drain")

    def hold(owner: Claim, events: Sequence[ClaimedEvent]) -> None:
        for group in group_claimed(events):
            held[owner.id] = owner
            remaining[owner.id] += 1
            if lines.join(owner, group):
                pool.submit(work, group.account)

    def take_more(take: TakeClaim) -> None:
        try:
            hold(*take())
        except EXPECTED_FAILURES as exc:  # the warehouse is down: try again next poll
            log.warning(f"could not claim due webhook events: {exc}")

    started = last_busy = renewed = next_take = time.monotonic()
    failed = False
    hold(claim, claimed)
    try:
        while True:
            now = time.monotonic()
            taking = take is not None and not failed and now - started < limits.take_for
            if take is not None and taking and now >= next_take:
                next_take = now + limits.poll
                # Groups taken but not yet yielded: a drain that falls behind stops taking, and
                # the events it leaves due show that another drain is needed.
                if remaining.total() < 2 * limits.workers:
                    take_more(take)
            if held:
                last_busy = now
            elif not taking or now - last_busy >= limits.idle_for:
                return
            if now - renewed >= limits.renew_every:
                renewed = now
                _renew(list(held.values()))
            try:
                item = results.get(timeout=limits.poll)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            owner, result = item
            failed = failed or result.problem is not None
            remaining[owner.id] -= 1
            if not remaining[owner.id]:
                del held[owner.id], remaining[owner.id]
            yield result
    finally:
        _give_back(lines.abandon())
        pool.shutdown(wait=True, cancel_futures=True)


def _give_back(untried: Sequence[tuple[Claim, EventGroup]]) -> None:
    """Events no sync tried are pending again at once; failing that, their lease expires."""
    for owner, group in untried:
        try:
            owner.give_back(now=datetime.now(UTC), event_ids=group.event_ids)
        except EXPECTED_FAILURES as exc:
            log.warning(f"could not give back {len(group.events)} untried events: {exc}")


def _renew(claims: Sequence[Claim]) -> None:
    for claim in claims:
        try:
            claim.renew(datetime.now(UTC))
        except EXPECTED_FAILURES as exc:  # the lease has minutes left; next renewal may work
            log.warning(f"could not renew claim {claim.id}: {exc}")
