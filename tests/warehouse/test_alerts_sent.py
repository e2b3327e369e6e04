"""De-duplication state: one alert per key and window, the suppressed ones counted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from poster_pipeline.warehouse.alerts_sent import alerts_sent, claim_alert, release_alert

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def new_key() -> str:
    return f"run-failure:poster/ingredients:cafe-{uuid.uuid4().hex[:8]}"


def test_one_alert_per_window_then_the_suppressed_are_counted(engine):
    key = new_key()
    first = claim_alert(engine, key, now=T0, window=HOUR)
    assert first is not None
    assert (first.previous_sent_at, first.suppressed) == (None, 0)

    assert claim_alert(engine, key, now=T0 + timedelta(minutes=10), window=HOUR) is None
    assert claim_alert(engine, key, now=T0 + timedelta(minutes=59), window=HOUR) is None

    after = claim_alert(engine, key, now=T0 + timedelta(minutes=61), window=HOUR)
    assert after is not None
    assert after.suppressed == 2
    assert after.previous_sent_at == T0
    # a new window starts at the alert that went out
    assert claim_alert(engine, key, now=T0 + timedelta(minutes=100), window=HOUR) is None


def test_keys_are_independent(engine):
    key, other = new_key(), new_key()
    assert claim_alert(engine, key, now=T0, window=HOUR) is not None
    assert claim_alert(engine, other, now=T0, window=HOUR) is not None
    assert claim_alert(engine, key, now=T0, window=HOUR) is None


def test_a_released_claim_reopens_the_window_and_counts_the_lost_alert(engine):
    key = new_key()
    assert claim_alert(engine, key, now=T0, window=HOUR) is not None
    assert claim_alert(engine, key, now=T0 + timedelta(minutes=5), window=HOUR) is None
    undelivered = claim_alert(engine, key, now=T0 + 2 * HOUR, window=HOUR)
    assert undelivered is not None
    release_alert(engine, undelivered)

    retry = claim_alert(engine, key, now=T0 + 2 * HOUR + timedelta(minutes=1), window=HOUR)
    assert retry is not None
    assert retry.suppressed == 2  # the one held back, and the one no target took
    assert retry.previous_sent_at == T0


def test_a_first_claim_released_alerts_at_once_next_time(engine):
    key = new_key()
    first = claim_alert(engine, key, now=T0, window=HOUR)
    assert first is not None
    release_alert(engine, first)
    again = claim_alert(engine, key, now=T0 + timedelta(seconds=30), window=HOUR)
    assert again is not None and again.suppressed == 1


def test_a_zero_window_never_suppresses(engine):
    key = new_key()
    assert claim_alert(engine, key, now=T0, window=timedelta(0)) is not None
    assert claim_alert(engine, key, now=T0, window=timedelta(0)) is not None


def test_the_state_is_a_durable_row(engine):
    key = new_key()
    claim_alert(engine, key, now=T0, window=HOUR)
    claim_alert(engine, key, now=T0 + timedelta(minutes=1), window=HOUR)
    with engine.connect() as conn:
        row = conn.execute(sa.select(alerts_sent).where(alerts_sent.c.key == key)).one()
    assert row.count_suppressed == 1
    assert row.last_sent_at.replace(tzinfo=row.last_sent_at.tzinfo or UTC) == T0
