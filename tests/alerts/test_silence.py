"""The silence rule without a database: thresholds, grace periods, once per period, clearing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from poster_pipeline.alerts.silence import (
    LISTED_PAIRS,
    SilenceCursor,
    decide,
    observe,
    silence_alert,
    silence_key,
    silence_threshold,
)
from poster_pipeline.warehouse.full_syncs import FullSyncState

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
THRESHOLD = silence_threshold(WINDOW)
LONG_AGO = NOW - timedelta(days=30)
#: The sensor has run for a month: every entity is long known, nobody was just reactivated.
SETTLED = SilenceCursor(
    active=frozenset({"api-demo", "second-cafe"}),
    entities={"suppliers": LONG_AGO, "ingredients": LONG_AGO},
)


def state(
    account: str = "api-demo",
    entity: str = "suppliers",
    *,
    synced: timedelta | None = None,
    connected: datetime = LONG_AGO,
    error: str | None = None,
) -> FullSyncState:
    """A pair last fully synced ``synced`` before NOW (None: never)."""
    synced_at = None if synced is None else NOW - synced
    return FullSyncState(
        account,
        entity,
        connected,
        last_full_sync_at=synced_at,
        last_full_attempt_at=NOW - timedelta(hours=1) if error else synced_at,
        last_full_error=error,
    )


def silent_pairs(states, cursor=SETTLED, alerted=None, now=NOW):
    decision = decide(states, alerted or {}, cursor, now=now, threshold=THRESHOLD)
    return [(p.account, p.entity) for p in decision.silent]


def test_the_threshold_is_twice_the_smart_sync_window():
    assert silence_threshold(timedelta(hours=24)) == timedelta(hours=48)
    assert silence_threshold(timedelta(hours=6)) == timedelta(hours=12)
    with pytest.raises(ValueError, match="must be positive"):
        silence_threshold(timedelta(0))


def test_a_pair_is_silent_from_twice_the_window_on():
    fresh = state(synced=THRESHOLD - timedelta(seconds=1))
    stale = state(synced=THRESHOLD)
    assert silent_pairs([fresh]) == []
    assert silent_pairs([stale]) == [("api-demo", "suppliers")]
    # The window is a parameter: the same pair under a 6 h window is silent after 12 h.
    decision = decide(
        [state(synced=timedelta(hours=13))],
        {},
        SETTLED,
        now=NOW,
        threshold=silence_threshold(timedelta(hours=6)),
    )
    assert len(decision.silent) == 1


def test_a_pair_that_keeps_failing_is_silent_too():
    [pair] = decide(
        [state(synced=timedelta(days=3), error="HTTP 503 from menu.getIngredients")],
        {},
        SETTLED,
        now=NOW,
        threshold=THRESHOLD,
    ).silent
    assert pair.last_full_error == "HTTP 503 from menu.getIngredients"


def test_a_new_account_is_measured_from_its_connection_not_from_epoch():
    just_connected = state(connected=NOW - timedelta(hours=1))
    assert silent_pairs([just_connected]) == []
    connected_long_ago = state(connected=NOW - THRESHOLD)
    [pair] = decide([connected_long_ago], {}, SETTLED, now=NOW, threshold=THRESHOLD).silent
    assert pair.since == NOW - THRESHOLD and pair.last_full_sync_at is None


def test_an_entity_new_to_the_catalogue_gets_the_threshold_before_it_alerts():
    cursor = observe(
        SETTLED,
        active=SETTLED.active or (),
        entities=["suppliers", "ingredients", "stock"],
        now=NOW - timedelta(hours=2),
        threshold=THRESHOLD,
    )
    assert cursor.entities["stock"] == NOW - timedelta(hours=2)
    assert cursor.entities["suppliers"] == LONG_AGO
    never_synced = [state(entity="stock"), state(entity="suppliers")]
    assert silent_pairs(never_synced, cursor) == [("api-demo", "suppliers")]
    later = NOW - timedelta(hours=2) + THRESHOLD
    assert silent_pairs(never_synced, cursor, now=later) == [
        ("api-demo", "stock"),
        ("api-demo", "suppliers"),
    ]


def test_a_reactivated_account_gets_the_threshold_to_sync_again():
    previous = SilenceCursor(active=frozenset({"second-cafe"}), entities=SETTLED.entities)
    cursor = observe(
        previous,
        active=["api-demo", "second-cafe"],
        entities=["suppliers"],
        now=NOW,
        threshold=THRESHOLD,
    )
    assert cursor.activated == {"api-demo": NOW}
    states = [
        state("api-demo", synced=timedelta(days=9)),
        state("second-cafe", synced=timedelta(days=9)),
    ]
    assert silent_pairs(states, cursor) == [("second-cafe", "suppliers")]
    assert silent_pairs(states, cursor, now=NOW + THRESHOLD) == [
        ("api-demo", "suppliers"),
        ("second-cafe", "suppliers"),
    ]
    # The grace is over after one threshold: it is not carried any further.
    after = observe(
        cursor,
        active=["api-demo", "second-cafe"],
        entities=["suppliers"],
        now=NOW + THRESHOLD,
        threshold=THRESHOLD,
    )
    assert after.activated == {}


def test_the_first_evaluation_treats_active_accounts_as_known():
    cursor = observe(
        SilenceCursor(), active=["api-demo"], entities=["suppliers"], now=NOW, threshold=THRESHOLD
    )
    assert cursor.activated == {}
    assert cursor.entities == {"suppliers": NOW}
    # A pair that did sync once is judged by that sync at once; one never synced gets grace.
    states = [state(synced=timedelta(days=3)), state("second-cafe")]
    assert silent_pairs(states, cursor) == [("api-demo", "suppliers")]


def test_a_deactivated_account_is_forgotten_and_its_state_cleared():
    cursor = observe(
        SETTLED, active=["second-cafe"], entities=["suppliers"], now=NOW, threshold=THRESHOLD
    )
    assert cursor.active == {"second-cafe"}
    # The warehouse lists active accounts only: api-demo's old alert is cleared, not "recovered".
    alerted = {silence_key("api-demo", "suppliers"): NOW - timedelta(hours=5)}
    decision = decide(
        [state("second-cafe", synced=timedelta(hours=1))],
        alerted,
        cursor,
        now=NOW,
        threshold=THRESHOLD,
    )
    assert decision.clear == (silence_key("api-demo", "suppliers"),)
    assert decision.recovered == ()


def test_a_silent_pair_alerts_at_most_once_per_period():
    stale = [state(synced=timedelta(days=3))]
    first = decide(stale, {}, SETTLED, now=NOW, threshold=THRESHOLD)
    assert [p.key for p in first.due] == ["silence:api-demo:suppliers"]

    alerted = {"silence:api-demo:suppliers": NOW}
    for later in (timedelta(minutes=10), THRESHOLD - timedelta(seconds=1)):
        again = decide(stale, alerted, SETTLED, now=NOW + later, threshold=THRESHOLD)
        assert again.due == () and len(again.silent) == 1 and again.clear == ()
    reminder = decide(stale, alerted, SETTLED, now=NOW + THRESHOLD, threshold=THRESHOLD)
    assert len(reminder.due) == 1


def test_recovery_clears_the_state_and_a_new_silence_alerts_again():
    alerted = {"silence:api-demo:suppliers": NOW - timedelta(hours=1)}
    recovered = decide(
        [state(synced=timedelta(minutes=5))], alerted, SETTLED, now=NOW, threshold=THRESHOLD
    )
    assert recovered.clear == ("silence:api-demo:suppliers",)
    assert recovered.recovered == (("api-demo", "suppliers"),)
    assert recovered.due == ()

    # The row is gone; two days later the pair is silent again and alerts at once.
    relapse = decide([state(synced=THRESHOLD)], {}, SETTLED, now=NOW, threshold=THRESHOLD)
    assert [p.key for p in relapse.due] == ["silence:api-demo:suppliers"]


def test_an_account_name_with_a_colon_round_trips_through_its_key():
    alerted = {silence_key("odd:name", "suppliers"): NOW - timedelta(hours=1)}
    decision = decide(
        [state("odd:name", synced=timedelta(hours=1))],
        alerted,
        SETTLED,
        now=NOW,
        threshold=THRESHOLD,
    )
    assert decision.recovered == (("odd:name", "suppliers"),)


def test_the_alert_says_when_silence_started_and_the_last_full_sync():
    states = [
        state(synced=timedelta(days=3, hours=2)),
        state("second-cafe", "ingredients", connected=NOW - timedelta(days=4)),
        state("second-cafe", "suppliers", synced=timedelta(days=2), error="token\nrevoked"),
    ]
    due = decide(states, {}, SETTLED, now=NOW, threshold=THRESHOLD).due
    alert = silence_alert(due, now=NOW, threshold=THRESHOLD)
    assert alert is not None
    text = alert.text()
    assert (
        alert.subject == "poster-pipeline: 3 account × entity pairs have not fully synced for 48 h"
    )
    assert "(2 × the smart-sync window of 24 h)" in text
    assert (
        "- api-demo / suppliers: silent since 2026-12-03 10:00 UTC (3 d 2 h); "
        "last successful full sync: 2026-12-03 10:00 UTC" in text
    )
    assert (
        "- second-cafe / ingredients: silent since 2026-12-02 12:00 UTC (4 d 0 h); "
        "last successful full sync: never; no full sync ever attempted" in text
    )
    assert "last full attempt 2026-12-06 11:00 UTC failed: token revoked" in text
    assert alert.account == "api-demo, second-cafe"
    assert alert.entities == ("ingredients", "suppliers")
    assert silence_alert([], now=NOW, threshold=THRESHOLD) is None


def test_many_silent_pairs_make_one_bounded_alert():
    states = [
        state(f"cafe-{n:03}", entity, synced=timedelta(days=5))
        for n in range(40)
        for entity in ("suppliers", "ingredients")
    ]
    due = decide(states, {}, SETTLED, now=NOW, threshold=THRESHOLD).due
    assert len(due) == 80
    alert = silence_alert(due, now=NOW, threshold=THRESHOLD)
    assert alert is not None
    text = alert.text()
    assert text.startswith("poster-pipeline: 80 account × entity pairs")
    assert text.count("\n- cafe-") == LISTED_PAIRS
    assert f"… and {80 - LISTED_PAIRS} more pairs." in text
    assert alert.account is not None and alert.account.endswith("… (40 accounts)")


def test_a_recovery_note_goes_alone_or_with_new_silences():
    note = silence_alert([], [("api-demo", "suppliers")], now=NOW, threshold=THRESHOLD)
    assert note is not None
    assert note.subject == "poster-pipeline: 1 silent account × entity pair fully synced again"
    assert "- recovered: api-demo / suppliers" in note.text()
    due = decide(
        [state("second-cafe", synced=timedelta(days=3))], {}, SETTLED, now=NOW, threshold=THRESHOLD
    ).due
    both = silence_alert(due, [("api-demo", "suppliers")], now=NOW, threshold=THRESHOLD)
    assert both is not None and "1 account × entity pair has not" in both.subject
    assert "- recovered: api-demo / suppliers" in both.text()


def test_cursor_round_trip_and_rejection():
    cursor = SilenceCursor(
        active=frozenset({"api-demo"}),
        entities={"suppliers": LONG_AGO},
        activated={"api-demo": NOW},
    )
    assert SilenceCursor.from_json(cursor.to_json()) == cursor
    assert SilenceCursor.from_json(None) == SilenceCursor()
    assert SilenceCursor.from_json(SilenceCursor().to_json()) == SilenceCursor()
    for bad in (
        "17",
        '{"active": []}',
        '{"active": [], "entities": {"s": "2026-01-01T00:00"}, "activated": {}}',
    ):
        with pytest.raises(ValueError, match="not a silence cursor"):
            SilenceCursor.from_json(bad)
