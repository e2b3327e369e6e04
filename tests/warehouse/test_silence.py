"""What the silence alert reads and clears, on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.warehouse.alerts_sent import (
    BATCH,
    NEVER_SENT,
    alerted_keys,
    claim_alert,
    claim_alerts,
    forget_alerts,
    release_alerts,
)
from poster_pipeline.warehouse.full_syncs import (
    FullSyncState,
    full_sync_states,
)
from poster_pipeline.warehouse.schema import accounts, alerts_sent, sync_status
from poster_pipeline.warehouse.status import record_failure, record_success

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(engine: Engine) -> Engine:
    with engine.begin() as conn:
        for table in (sync_status, accounts, alerts_sent):
            conn.execute(sa.delete(table))
    return engine


def connect(engine: Engine, account: str, at: datetime, *, active: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(accounts).values(
                account=account,
                token_encrypted="not-a-token",
                auth_method="personal",
                is_active=active,
                connected_at=at,
                updated_at=at,
            )
        )


def test_every_active_account_and_entity_is_listed_with_its_full_sync_state(warehouse):
    connect(warehouse, "api-demo", NOW - timedelta(days=10))
    connect(warehouse, "gone-cafe", NOW - timedelta(days=10), active=False)
    synced = NOW - timedelta(days=3)
    with warehouse.begin() as conn:
        record_success(
            conn, "suppliers", "api-demo", "full", now=synced, active=1, total=1, run_id="r1"
        )
        record_success(
            conn, "ingredients", "api-demo", "partial", now=NOW, active=1, total=1, run_id="r2"
        )
        record_success(
            conn, "suppliers", "gone-cafe", "full", now=synced, active=1, total=1, run_id="r3"
        )
        record_success(
            conn, "retired", "api-demo", "full", now=synced, active=1, total=1, run_id="r4"
        )
    record_failure(warehouse, "ingredients", "api-demo", "HTTP 503", now=NOW - timedelta(hours=1))

    states = full_sync_states(warehouse, ["suppliers", "ingredients", "stock"])

    connected = NOW - timedelta(days=10)
    assert states == [
        FullSyncState("api-demo", "suppliers", connected, synced, synced, None),
        FullSyncState(
            "api-demo", "ingredients", connected, None, NOW - timedelta(hours=1), "HTTP 503"
        ),
        FullSyncState("api-demo", "stock", connected),
    ]


def test_only_the_silence_keys_are_read_and_only_the_named_ones_forgotten(warehouse):
    for key in (
        "silence:api-demo:suppliers",
        "silence:b:stock",
        "poster/suppliers|api-demo",
        "silenceXa",
    ):
        assert claim_alert(warehouse, key, now=NOW, window=timedelta(hours=1)) is not None

    assert alerted_keys(warehouse, "silence:") == {
        "silence:api-demo:suppliers": NOW,
        "silence:b:stock": NOW,
    }
    assert alerted_keys(warehouse, "silence_") == {}  # "_" is a LIKE wildcard: escaped

    assert forget_alerts(warehouse, ["silence:b:stock", "silence:never:sent"]) == 1
    assert forget_alerts(warehouse, []) == 0
    assert set(alerted_keys(warehouse, "")) == {
        "silence:api-demo:suppliers",
        "poster/suppliers|api-demo",
        "silenceXa",
    }


def test_claims_are_made_once_per_window_and_can_be_given_back(warehouse):
    hour = timedelta(hours=1)
    keys = ["silence:a:suppliers", "silence:b:suppliers"]
    assert claim_alerts(warehouse, keys, now=NOW, window=hour) == set(keys)
    assert claim_alerts(warehouse, keys, now=NOW + hour / 2, window=hour) == set()
    assert claim_alerts(warehouse, keys[:1], now=NOW + hour, window=hour) == {keys[0]}

    release_alerts(warehouse, keys, claimed_at=NOW + hour)  # only a's claim is this one
    assert alerted_keys(warehouse, "silence:") == {keys[0]: NEVER_SENT, keys[1]: NOW}
    # Given back, a's claim is open at once; b's is still within a longer window.
    later = NOW + hour + timedelta(minutes=1)
    assert claim_alerts(warehouse, keys, now=later, window=2 * hour) == {keys[0]}


def test_claims_of_thousands_of_keys_go_in_batches(warehouse):
    keys = [f"silence:cafe-{n:04}:suppliers" for n in range(2 * BATCH + 5)]
    assert claim_alerts(warehouse, keys, now=NOW, window=timedelta(hours=48)) == set(keys)
    release_alerts(warehouse, keys, claimed_at=NOW)
    assert set(alerted_keys(warehouse, "silence:").values()) == {NEVER_SENT}


def test_two_evaluators_never_claim_the_same_key(warehouse):
    keys = [f"silence:cafe-{n:03}:suppliers" for n in range(300)]
    start = threading.Barrier(2)
    results: list[set[str]] = []

    def evaluator() -> None:
        start.wait()
        results.append(claim_alerts(warehouse, keys, now=NOW, window=timedelta(hours=48)))

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    first, second = results
    assert first | second == set(keys) and not first & second
