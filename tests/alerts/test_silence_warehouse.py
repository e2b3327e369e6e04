"""What the silence alert reads and clears, on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.alerts.state import claim_alert
from poster_pipeline.warehouse.schema import accounts, alerts_sent, sync_status
from poster_pipeline.warehouse.silence import (
    FullSyncState,
    alerted_keys,
    forget_alerts,
    full_sync_states,
)
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
