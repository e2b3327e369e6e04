"""The dead-webhook-events sensor against a real warehouse: events are enqueued, then die."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.alerts import AlertsResource, DeadEventsCursor
from poster_pipeline.orchestration.resources import WarehouseResource
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.warehouse.queue import enqueue
from poster_pipeline.warehouse.schema import webhook_events
from sensors.alerts import NO_TARGET, dead_webhook_events_alert

_times = itertools.count(1_760_000_000)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(engine: Engine) -> Iterator[WarehouseResource]:
    """The warehouse (PostgreSQL, SQLite) with an empty queue."""
    with engine.begin() as conn:
        conn.execute(sa.delete(webhook_events))
    yield WarehouseResource(database_url=engine.url.render_as_string(hide_password=False))


def receive(warehouse: WarehouseResource, account: str, object_id: int, at: datetime) -> int:
    """Enqueue a webhook as the receiver does; returns the event id."""
    event = WebhookEvent(
        account=account,
        object="ingredient",
        object_id=object_id,
        action="changed",
        time=str(next(_times)),
        verify="unused",
    )
    with warehouse.engine().begin() as conn:
        stored = enqueue(conn, event, {"object": "ingredient"}, entity="ingredients", now=at)
    assert stored.id is not None
    return stored.id


def die(warehouse: WarehouseResource, event_id: int, at: datetime, error: str) -> None:
    """What the queue does after the last attempt: status dead, the error, updated_at."""
    with warehouse.engine().begin() as conn:
        conn.execute(
            sa.update(webhook_events)
            .where(webhook_events.c.id == event_id)
            .values(status="dead", attempts=8, last_error=error, updated_at=at)
        )


def evaluate(warehouse, alerts, cursor: str | None):
    context = dg.build_sensor_context(
        cursor=cursor, resources={"alerts": alerts, "warehouse": warehouse}
    )
    return dead_webhook_events_alert(context)


@pytest.fixture
def alerts(sink) -> AlertsResource:
    return AlertsResource(webhook_url=sink.url)


def test_dead_events_are_summarised_in_one_alert(warehouse, alerts, sink):
    for object_id in (11, 12, 13):
        event_id = receive(warehouse, "api-demo", object_id, T0)
        die(warehouse, event_id, T0 + timedelta(minutes=object_id), f"HTTP 500 (#{object_id})")
    die(warehouse, receive(warehouse, "second-cafe", 7, T0), T0, "token revoked")
    receive(warehouse, "api-demo", 99, T0)  # pending: not dead

    result = evaluate(warehouse, alerts, None)

    [text] = sink.texts
    assert text.startswith("poster-pipeline: 4 webhook events are dead")
    assert "Account: api-demo, second-cafe" in text
    assert "- api-demo / ingredients: 3 (ingredient 11, ingredient 12, ingredient 13)" in text
    assert "last error: HTTP 500 (#13)" in text
    assert "- second-cafe / ingredients: 1 (ingredient 7); last error: token revoked" in text
    assert "poster-pipeline queue retry-dead" in text
    assert "ingredient 99" not in text
    assert isinstance(result, dg.SensorResult) and result.cursor

    again = evaluate(warehouse, alerts, result.cursor)
    assert len(sink.texts) == 1
    assert isinstance(again, dg.SensorResult)
    assert again.skip_reason and "no webhook event died" in again.skip_reason.skip_message


def test_an_older_event_that_dies_later_is_not_missed(warehouse, alerts, sink):
    old = receive(warehouse, "api-demo", 1, T0)
    new = receive(warehouse, "api-demo", 2, T0 + timedelta(minutes=1))
    assert old < new
    die(warehouse, new, T0 + timedelta(minutes=30), "newer died first")
    cursor = evaluate(warehouse, alerts, None).cursor

    die(warehouse, old, T0 + timedelta(minutes=45), "older died later")
    cursor = evaluate(warehouse, alerts, cursor).cursor

    assert len(sink.texts) == 2
    assert "ingredient 1)" in sink.texts[1] and "older died later" in sink.texts[1]
    assert "ingredient 2" not in sink.texts[1]


def test_an_event_committed_behind_the_watermark_is_not_missed(warehouse, alerts, sink):
    """A run stamps ``updated_at`` with its start time and commits later: the row can show up
    with a time older than what the sensor has already seen."""
    die(warehouse, receive(warehouse, "api-demo", 1, T0), T0 + timedelta(minutes=30), "first")
    cursor = evaluate(warehouse, alerts, None).cursor

    late = receive(warehouse, "api-demo", 2, T0)
    die(warehouse, late, T0 + timedelta(minutes=20), "committed late")
    cursor = evaluate(warehouse, alerts, cursor).cursor
    evaluate(warehouse, alerts, cursor)

    assert len(sink.texts) == 2
    assert "1 webhook event is dead" in sink.texts[1]
    assert "committed late" in sink.texts[1]


def test_an_event_that_dies_again_after_a_retry_is_alerted_again(warehouse, alerts, sink):
    event_id = receive(warehouse, "api-demo", 5, T0)
    die(warehouse, event_id, T0 + timedelta(minutes=10), "first death")
    cursor = evaluate(warehouse, alerts, None).cursor
    die(warehouse, event_id, T0 + timedelta(minutes=50), "second death")  # retried, died again
    evaluate(warehouse, alerts, cursor)
    assert len(sink.texts) == 2
    assert "second death" in sink.texts[1]


def test_an_undelivered_alert_keeps_the_cursor(warehouse, sink, refused_port):
    die(warehouse, receive(warehouse, "api-demo", 3, T0), T0, "gone")
    dead = AlertsResource(webhook_url=f"http://127.0.0.1:{refused_port}/hook", webhook_retries=0)
    result = evaluate(warehouse, dead, None)
    assert isinstance(result, dg.SkipReason)  # no cursor: the next evaluation tries again

    evaluate(warehouse, AlertsResource(webhook_url=sink.url), None)
    assert len(sink.texts) == 1


def test_an_unreadable_cursor_starts_over(warehouse, alerts, sink):
    die(warehouse, receive(warehouse, "api-demo", 4, T0), T0, "gone")
    evaluate(warehouse, alerts, "17")  # e.g. an id cursor of an older version
    assert len(sink.texts) == 1


def test_without_targets_the_warehouse_is_not_read(refused_port):
    nowhere = WarehouseResource(database_url=f"postgresql+psycopg://x@127.0.0.1:{refused_port}/x")
    result = evaluate(nowhere, AlertsResource(), None)
    assert isinstance(result, dg.SkipReason) and result.skip_message == NO_TARGET


def test_cursor_round_trip():
    cursor = DeadEventsCursor(
        watermark=T0,
        seen=frozenset({(1, T0), (2, T0), (3, T0 - timedelta(minutes=5))}),
    )
    assert DeadEventsCursor.from_json(cursor.to_json()) == cursor
    assert DeadEventsCursor.from_json(None) == DeadEventsCursor()
    with pytest.raises(ValueError, match="not a dead-events cursor"):
        DeadEventsCursor.from_json('{"watermark": 5}')
