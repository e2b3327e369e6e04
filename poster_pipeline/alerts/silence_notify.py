"""One evaluation of the silence alert: read the warehouse, decide, claim, send, clear.

The rule is :mod:`poster_pipeline.alerts.silence`; this module only does its I/O in order:
the due pairs are claimed in ``alerts_sent`` (one batch) before the alert goes out (so two
evaluators never both send it), the claims are given back if no target took the alert (the
next evaluation tries again), and the state of pairs no longer silent is deleted either way
(a recovery note that did not reach anyone is not worth repeating).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.alerts.notifiers import Delivery, Notifier, deliver
from poster_pipeline.alerts.silence import (
    KEY_PREFIX,
    SilenceCursor,
    SilentPair,
    decide,
    observe,
    silence_alert,
)
from poster_pipeline.warehouse.alerts_sent import (
    alerted_keys,
    claim_alerts,
    forget_alerts,
    release_alerts,
)
from poster_pipeline.warehouse.full_syncs import full_sync_states

__all__ = ["SilenceOutcome", "check_silence"]


@dataclass(frozen=True)
class SilenceOutcome:
    """``cursor`` is for the next evaluation; ``alerted`` the pairs this evaluation claimed
    and sent (empty when no target took the alert); ``silent`` counts all silent pairs."""

    cursor: SilenceCursor
    silent: int
    alerted: tuple[SilentPair, ...]
    cleared: int
    alert: Alert | None
    delivery: Delivery | None

    def summary(self) -> str:
        """One line for the sensor's tick."""
        if self.alert is None:
            parts = [f"{self.silent} silent account × entity pairs, none due an alert"]
        elif self.delivery is not None and not self.delivery.delivered:
            parts = [f"{self.silent} silent pairs: no alert target took the alert"]
        else:
            parts = [f"alerted {len(self.alerted)} silent pairs ({self.silent} silent)"]
        if self.cleared:
            parts.append(f"cleared {self.cleared} that are not silent any more")
        return "; ".join(parts)


def check_silence(
    engine: Engine,
    notifiers: Sequence[Notifier],
    *,
    cursor: SilenceCursor,
    entities: Sequence[str],
    now: datetime,
    threshold: timedelta,
    log: logging.Logger,
    link: str | None = None,
) -> SilenceOutcome:
    """Alert the pairs silent at ``now`` (at most once per ``threshold`` each), clear the
    state of those that are not silent any more, and return what happened."""
    states = full_sync_states(engine, entities)
    cursor = observe(
        cursor,
        active={s.account for s in states},
        entities=entities,
        now=now,
        threshold=threshold,
    )
    decision = decide(
        states, alerted_keys(engine, KEY_PREFIX), cursor, now=now, threshold=threshold
    )
    keys = claim_alerts(engine, [pair.key for pair in decision.due], now=now, window=threshold)
    claimed = [pair for pair in decision.due if pair.key in keys]  # others: just sent elsewhere
    cleared = forget_alerts(engine, decision.clear)
    for account, entity in decision.recovered:
        log.info(f"silence over: {account} / {entity} fully synced again")
    alert = silence_alert(claimed, decision.recovered, now=now, threshold=threshold, link=link)
    if alert is None:
        return SilenceOutcome(cursor, len(decision.silent), (), cleared, None, None)
    delivery = deliver(alert, notifiers, log)
    if not delivery.delivered:
        log.warning("no target took the silence alert; the next evaluation tries again")
        release_alerts(engine, keys, claimed_at=now)
        claimed = []
    return SilenceOutcome(cursor, len(decision.silent), tuple(claimed), cleared, alert, delivery)
