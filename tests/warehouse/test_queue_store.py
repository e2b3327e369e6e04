"""The receiver's way into the queue, ``store_webhook``: a prepared statement in autocommit on
PostgreSQL, SQLAlchemy's path on SQLite, the same rows either way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.warehouse.queue import Enqueued, settle_done, store_webhook
from poster_pipeline.warehouse.schema import webhook_events
from tests.warehouse.test_queue import T0, claim, event, status_of


@pytest.fixture(autouse=True)
def empty_queue(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(webhook_events))


#: For the tests of the driver path, which only PostgreSQL takes.
only_postgresql = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


@pytest.fixture
def one_connection(engine: Engine) -> Iterator[Engine]:
    """An engine whose pool holds a single connection, so every call lends the same one."""
    single = sa.create_engine(engine.url, pool_size=1, max_overflow=0)
    yield single
    single.dispose()


def store(engine: Engine, delivery: WebhookEvent, **kw: Any) -> Enqueued:
    kw.setdefault("entity", "ingredients")
    payload = kw.pop("payload", {"raw": True})
    return store_webhook(engine, delivery, payload, now=kw.pop("now", T0), **kw)


def rows(engine: Engine) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(webhook_events).order_by(webhook_events.c.id)))


def test_a_delivery_is_committed_once_however_often_it_comes(engine, account):
    delivery = event(account, 7, data='{"a":1}')
    first = store(engine, delivery, payload={"account": account, "nested": {"n": [1, 2]}})
    assert first.id is not None and not first.duplicate
    assert store(engine, delivery) == Enqueued(id=None, duplicate=True)

    [row] = rows(engine)  # read on another connection: committed
    assert (row.id, row.account, row.object_id, row.action) == (first.id, account, 7, "changed")
    assert (row.status, row.entity, row.attempts, row.event_time) == (
        "pending",
        "ingredients",
        0,
        int(delivery.time),
    )
    assert row.payload == {"account": account, "nested": {"n": [1, 2]}}


def test_an_ignored_delivery_is_stored_with_its_reason(engine, account):
    reason = "object transaction is not synced"
    stored = store(engine, event(account, 1, obj="transaction"), entity=None, ignore_reason=reason)
    row = status_of(engine, stored.id)
    assert (row.status, row.ignore_reason, row.entity) == ("ignored", reason, None)
    assert claim(engine) == []


def test_a_redelivery_after_the_fetch_started_asks_for_one_more(engine, account):
    delivery = event(account, 7)
    first = store(engine, delivery).id
    [claimed] = claim(engine, "c1")
    assert store(engine, delivery) == Enqueued(id=first, duplicate=False)  # claimed: re-pended
    assert status_of(engine, first).status == "pending"
    [claimed] = claim(engine, "c2")
    with engine.begin() as conn:
        settle_done(conn, [claimed.id], claim_id="c2", run_id="r2", now=T0)
    assert store(engine, delivery) == Enqueued(id=first, duplicate=False)  # done: re-pended
    assert store(engine, delivery).duplicate  # pending: nothing more to ask
    assert len(rows(engine)) == 1


def test_simultaneous_deliveries_are_each_stored_once(engine, account):
    deliveries = [event(account, n) for n in range(50)]
    results: list[Enqueued] = []  # list.append is atomic

    def deliver_all() -> None:
        results.extend(store(engine, delivery) for delivery in deliveries)

    threads = [threading.Thread(target=deliver_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 300
    assert sorted(r.id for r in results if not r.duplicate) == [row.id for row in rows(engine)]
    assert sorted(row.object_id for row in rows(engine)) == list(range(50))


@only_postgresql
def test_the_pooled_connection_is_lent_back_for_transactions(one_connection: Engine, account):
    store(one_connection, event(account, 1))
    with one_connection.connect() as conn:
        assert conn.connection.driver_connection.autocommit is False
        conn.execute(sa.delete(webhook_events))
        conn.rollback()  # only a transaction can be rolled back
    assert len(rows(one_connection)) == 1


@only_postgresql
def test_a_refused_statement_is_sqlalchemys_error_and_the_next_store_works(
    one_connection: Engine, account
):
    # PostgreSQL's jsonb refuses a NUL character (the receiver answers 400 before this).
    with pytest.raises(sa.exc.DataError) as refused:
        store(one_connection, event(account, 1), payload={"text": "a\x00b"})
    assert not refused.value.connection_invalidated  # the server is there: the pool stays
    assert not store(one_connection, event(account, 2)).duplicate
    assert len(rows(one_connection)) == 1
