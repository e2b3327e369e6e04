"""The silence sensor against a real PostgreSQL warehouse, with alerts going to an HTTP sink
(and a real SMTP server): what goes out, how often, and when it stops."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.alerts import AlertsResource
from poster_pipeline.alerts.silence import SilenceCursor
from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.orchestration.resources import WarehouseResource
from poster_pipeline.warehouse.schema import accounts, alerts_sent, sync_status
from poster_pipeline.warehouse.status import record_success
from sensors.alerts import NO_TARGET, SILENCE_CHECK_SECONDS, sync_silence_alert
from tests.processes import clean_env

ENTITY_NAMES = [spec.name for spec in ENTITIES]
SENSOR = sync_silence_alert(timedelta(hours=24))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def warehouse(pg_engine: Engine) -> Iterator[WarehouseResource]:
    """The PostgreSQL warehouse with no account, no sync status and no alert state."""
    with pg_engine.begin() as conn:
        for table in (sync_status, accounts, alerts_sent):
            conn.execute(sa.delete(table))
    yield WarehouseResource(database_url=pg_engine.url.render_as_string(hide_password=False))


@pytest.fixture
def alerts(sink) -> AlertsResource:
    return AlertsResource(webhook_url=sink.url)


def settled() -> str:
    """The cursor of a sensor that has known every entity for a month; ``active`` None takes
    every active account as known too (as a first evaluation does), so no grace is left."""
    month_ago = now() - timedelta(days=30)
    return SilenceCursor(active=None, entities=dict.fromkeys(ENTITY_NAMES, month_ago)).to_json()


def connect(warehouse: WarehouseResource, account: str, *, ago: timedelta) -> None:
    at = now() - ago
    with warehouse.engine().begin() as conn:
        conn.execute(
            sa.insert(accounts).values(
                account=account,
                token_encrypted="not-a-token",
                auth_method="personal",
                is_active=True,
                connected_at=at,
                updated_at=at,
            )
        )


def full_sync(warehouse: WarehouseResource, account: str, entities, *, ago: timedelta) -> None:
    """Record successful full syncs as the load does."""
    with warehouse.engine().begin() as conn:
        for entity in entities:
            record_success(
                conn, entity, account, "full", now=now() - ago, active=1, total=1, run_id="run"
            )


def evaluate(warehouse, alerts, cursor: str | None, sensor=SENSOR):
    context = dg.build_sensor_context(
        cursor=cursor, resources={"alerts": alerts, "warehouse": warehouse}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def state_keys(warehouse: WarehouseResource) -> set[str]:
    with warehouse.engine().connect() as conn:
        return set(conn.execute(sa.select(alerts_sent.c.key)).scalars())


def test_silent_pairs_alert_once_in_one_summary(warehouse, alerts, sink):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(hours=1))
    full_sync(warehouse, "api-demo", ["suppliers", "storages"], ago=timedelta(days=3))
    connect(warehouse, "second-cafe", ago=timedelta(days=10))  # nothing ever ran for it

    result = evaluate(warehouse, alerts, settled())

    [text] = sink.texts
    count = 2 + len(ENTITY_NAMES)
    assert text.startswith(
        f"poster-pipeline: {count} account × entity pairs have not fully synced for 48 h"
    )
    assert "- api-demo / storages: silent since " in text
    assert "- api-demo / suppliers: silent since " in text
    assert "- api-demo / ingredients" not in text
    assert "- second-cafe / ingredients: silent since " in text
    assert "last successful full sync: never; no full sync ever attempted" in text
    assert state_keys(warehouse) == {"silence:api-demo:storages", "silence:api-demo:suppliers"} | {
        f"silence:second-cafe:{name}" for name in ENTITY_NAMES
    }
    assert isinstance(result, dg.SensorResult) and result.cursor

    # Every later evaluation within the period sees the same silence and sends nothing.
    again = evaluate(warehouse, alerts, result.cursor)
    again = evaluate(warehouse, alerts, again.cursor)
    assert len(sink.texts) == 1
    assert again.skip_reason is not None
    assert f"{count} silent account × entity pairs, none due" in again.skip_reason.skip_message


def test_a_pair_alerts_again_after_a_period_of_silence(warehouse, alerts, sink):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(hours=1))
    full_sync(warehouse, "api-demo", ["workshops"], ago=timedelta(days=5))
    cursor = evaluate(warehouse, alerts, settled()).cursor
    # Two days pass: the alert of the still silent pair is as old as the period.
    with warehouse.engine().begin() as conn:
        conn.execute(sa.update(alerts_sent).values(last_sent_at=now() - timedelta(hours=48)))
    evaluate(warehouse, alerts, cursor)
    assert len(sink.texts) == 2
    assert "- api-demo / workshops: silent since" in sink.texts[1]


def test_recovery_clears_the_state_and_a_new_silence_alerts_again(warehouse, alerts, sink):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(hours=1))
    full_sync(warehouse, "api-demo", ["suppliers"], ago=timedelta(days=3))
    cursor = evaluate(warehouse, alerts, settled()).cursor
    assert state_keys(warehouse) == {"silence:api-demo:suppliers"}

    full_sync(warehouse, "api-demo", ["suppliers"], ago=timedelta(0))  # the daemon is back
    cursor = evaluate(warehouse, alerts, cursor).cursor

    assert state_keys(warehouse) == set()
    assert len(sink.texts) == 2
    assert sink.texts[1].startswith(
        "poster-pipeline: 1 silent account × entity pair fully synced again"
    )
    assert "- recovered: api-demo / suppliers" in sink.texts[1]
    evaluate(warehouse, alerts, cursor)
    assert len(sink.texts) == 2  # the recovery is noted once

    with warehouse.engine().begin() as conn:  # silent again, as if two more days had passed
        conn.execute(
            sa.update(sync_status)
            .where(sync_status.c.entity == "suppliers")
            .values(last_full_sync_at=now() - timedelta(days=2, minutes=1))
        )
    evaluate(warehouse, alerts, cursor)
    assert len(sink.texts) == 3
    assert "- api-demo / suppliers: silent since" in sink.texts[2]


def test_deactivated_and_new_accounts_do_not_alert(warehouse, alerts, sink):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ["suppliers"], ago=timedelta(days=3))
    cursor = evaluate(warehouse, alerts, settled()).cursor
    assert len(sink.texts) == 1 and state_keys(warehouse)

    with warehouse.engine().begin() as conn:
        conn.execute(sa.update(accounts).values(is_active=False))
    connect(warehouse, "new-cafe", ago=timedelta(hours=1))  # no sync yet: still in its grace
    result = evaluate(warehouse, alerts, cursor)

    assert len(sink.texts) == 1  # the deactivation is not a recovery
    assert state_keys(warehouse) == set()
    assert result.skip_reason is not None
    assert "0 silent" in result.skip_reason.skip_message


def test_a_reactivated_account_has_the_threshold_to_sync_again(warehouse, alerts, sink):
    connect(warehouse, "api-demo", ago=timedelta(days=30))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(days=20))
    with warehouse.engine().begin() as conn:
        conn.execute(sa.update(accounts).values(is_active=False))
    cursor = evaluate(warehouse, alerts, settled()).cursor
    with warehouse.engine().begin() as conn:
        conn.execute(sa.update(accounts).values(is_active=True))
    evaluate(warehouse, alerts, cursor)
    assert sink.texts == []


def test_the_threshold_follows_the_smart_sync_window(warehouse, alerts, sink):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(hours=3))

    evaluate(warehouse, alerts, settled())
    assert sink.texts == []
    evaluate(warehouse, alerts, settled(), sensor=sync_silence_alert(timedelta(hours=1)))
    [text] = sink.texts
    assert "have not fully synced for 2 h" in text
    assert "(2 × the smart-sync window of 1 h)" in text


def test_an_undelivered_alert_is_tried_again(warehouse, sink, refused_port):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(days=3))
    nowhere = AlertsResource(webhook_url=f"http://127.0.0.1:{refused_port}/hook", webhook_retries=0)
    result = evaluate(warehouse, nowhere, settled())
    assert result.skip_reason is not None
    assert "no alert target took the alert" in result.skip_reason.skip_message

    evaluate(warehouse, AlertsResource(webhook_url=sink.url), result.cursor)
    [text] = sink.texts
    assert f"{len(ENTITY_NAMES)} account × entity pairs" in text


def test_the_alert_goes_by_email_too(warehouse, sink, inbox):
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ENTITY_NAMES, ago=timedelta(hours=1))
    full_sync(warehouse, "api-demo", ["products"], ago=timedelta(days=4))
    both = AlertsResource(
        webhook_url=sink.url,
        email_to="ops@example.com",
        smtp_url=f"smtp://127.0.0.1:{inbox.port}?from=alerts@example.com",
    )
    evaluate(warehouse, both, settled())
    [message] = inbox.messages
    assert message["Subject"] == (
        "poster-pipeline: 1 account × entity pair has not fully synced for 48 h"
    )
    assert "- api-demo / products: silent since" in message.get_content()
    assert len(sink.texts) == 1


def test_many_silent_accounts_make_one_message(warehouse, alerts, sink):
    for n in range(30):
        connect(warehouse, f"cafe-{n:02}", ago=timedelta(days=10))
        full_sync(warehouse, f"cafe-{n:02}", ENTITY_NAMES, ago=timedelta(days=3))
    evaluate(warehouse, alerts, settled())
    [text] = sink.texts
    count = 30 * len(ENTITY_NAMES)
    assert text.startswith(f"poster-pipeline: {count} account × entity pairs")
    assert len(state_keys(warehouse)) == count


def test_the_first_evaluation_gives_never_synced_pairs_the_threshold(warehouse, alerts, sink):
    """Deployed for the first time (or with a new entity): pairs that never synced are not
    alerted at once, those whose last full sync is old are."""
    connect(warehouse, "api-demo", ago=timedelta(days=10))
    full_sync(warehouse, "api-demo", ["suppliers"], ago=timedelta(days=3))
    evaluate(warehouse, alerts, None)
    [text] = sink.texts
    assert text.startswith("poster-pipeline: 1 account × entity pair has not fully synced")


def test_without_targets_nothing_is_read_and_the_reason_is_logged(refused_port, capfd):
    """Dagster's sensor log writes to the process's stderr."""
    nowhere = WarehouseResource(database_url=f"postgresql+psycopg://x@127.0.0.1:{refused_port}/x")
    result = evaluate(nowhere, AlertsResource(), None)
    assert isinstance(result, dg.SkipReason) and result.skip_message == NO_TARGET
    assert "no alert target is configured" in capfd.readouterr().err


def test_the_sensor_checks_every_ten_minutes_and_is_on_by_default():
    assert SENSOR.name == "sync_silence_alert"
    assert SENSOR.minimum_interval_seconds == SILENCE_CHECK_SECONDS == 600
    assert SENSOR.default_status is dg.DefaultSensorStatus.RUNNING


def test_the_code_location_registers_it_with_its_smart_sync_window(tmp_path):
    """``definitions.py`` passes smart sync's own window (``POSTER_SMART_SYNC_HOURS``): 6 h
    makes the threshold 12 h. A subprocess, since the code location reads settings once."""
    env = clean_env(POSTER_SMART_SYNC_HOURS="6", POSTER_DATA_DIR=str(tmp_path))
    script = (
        "from poster_pipeline.definitions import defs\n"
        "print(defs.resolve_sensor_def('sync_silence_alert').description)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "no successful full sync for 12 h (twice the smart-sync window)" in result.stdout
