"""The webhook queue on PostgreSQL and SQLite: stored once, claimed once, settled or retried."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.warehouse.engine import as_utc
from poster_pipeline.warehouse.queue import (
    Claim,
    ClaimedEvent,
    RetryPolicy,
    claim_due,
    enqueue,
    group_claimed,
    purge,
    queue_counts,
    release_failed,
    renew_claim,
    retry_dead,
    settle_done,
    unclaim,
)
from poster_pipeline.warehouse.schema import webhook_events

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
POLICY = RetryPolicy(max_attempts=3, base=timedelta(seconds=10), cap=timedelta(minutes=5))
_times = itertools.count(1_700_000_000)


def event(account: str, object_id: int, obj: str = "ingredient", **kw) -> WebhookEvent:
    fields = dict(
        account=account,
        object=obj,
        object_id=object_id,
        action="changed",
        time=str(next(_times)),
        verify="0" * 32,
    )
    fields.update(kw)
    return WebhookEvent(**fields)


def put(engine, evt: WebhookEvent, entity: str | None = "ingredients", **kw):
    with engine.begin() as conn:
        return enqueue(conn, evt, {"raw": True}, entity=entity, now=kw.pop("now", T0), **kw)


def claim(engine, claim_id: str = "c1", now: datetime = T0, limit: int = 100):
    return claim_due(engine, claim_id=claim_id, now=now, lease=LEASE, limit=limit, policy=POLICY)


def status_of(engine, event_id: int) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(webhook_events).where(webhook_events.c.id == event_id)).one()


@pytest.fixture(autouse=True)
def empty_queue(engine):
    with engine.begin() as conn:
        conn.execute(sa.delete(webhook_events))


def test_a_delivery_is_stored_once_however_often_it_comes(engine, account):
    delivery = event(account, 7)
    first = put(engine, delivery)
    again = put(engine, delivery)
    assert first.id is not None and not first.duplicate
    assert again.duplicate and again.id is None
    assert queue_counts(engine)["pending"] == 1


def test_deliveries_differing_in_any_signed_field_are_distinct(engine, account):
    base = event(account, 7)
    variants = [
        base,
        event(account, 7, time=base.time, action="removed"),
        event(account, 8, time=base.time),
        event(account, 7, time=base.time, data='{"a":1}'),
        event(f"{account}-b", 7, time=base.time),
    ]
    assert [put(engine, v).duplicate for v in variants] == [False] * 5


def test_ignored_events_are_recorded_but_never_claimed(engine, account):
    put(engine, event(account, 1, obj="transaction"), entity=None, ignore_reason="not synced")
    assert queue_counts(engine)["ignored"] == 1
    assert claim(engine) == []


def test_due_events_are_claimed_once_in_order(engine, account):
    ids = [put(engine, event(account, n)).id for n in (3, 1, 2)]
    claimed = claim(engine)
    assert [c.id for c in claimed] == ids
    assert all(c.attempts == 1 and c.entity == "ingredients" for c in claimed)
    assert claim(engine, "c2") == []
    row = status_of(engine, ids[0])
    assert row.status == "claimed" and row.claim_id == "c1"


def test_an_event_arriving_during_a_claim_waits_for_the_next_run(engine, account):
    put(engine, event(account, 1))
    [running] = claim(engine, "c1")
    late = put(engine, event(account, 1)).id
    other_entity = put(engine, event(account, 5, obj="product"), entity="products").id
    assert [c.id for c in claim(engine, "c2")] == [other_entity]
    with engine.begin() as conn:
        settle_done(conn, [running.id], claim_id="c1", run_id="r1", now=T0)
    assert [c.id for c in claim(engine, "c3")] == [late]


def test_settling_needs_the_claim_that_holds_the_events(engine, account):
    ids = [put(engine, event(account, n)).id for n in (1, 2)]
    claim(engine, "c1")
    with engine.begin() as conn:
        assert settle_done(conn, ids, claim_id="someone-else", run_id="r0", now=T0) == 0
        assert settle_done(conn, ids, claim_id="c1", run_id="r1", now=T0) == 2
    row = status_of(engine, ids[0])
    assert (row.status, row.settled_by_run, row.claimed_until) == ("done", "r1", None)


def test_a_failed_run_backs_off_then_goes_dead(engine, account):
    event_id = put(engine, event(account, 1)).id
    now = T0
    for attempt in range(1, POLICY.max_attempts + 1):
        [claimed] = claim(engine, f"c{attempt}", now=now)
        assert claimed.attempts == attempt
        retried, dead = release_failed(
            engine, [event_id], claim_id=f"c{attempt}", error="HTTP 503", now=now, policy=POLICY
        )
        row = status_of(engine, event_id)
        if attempt < POLICY.max_attempts:
            assert (retried, dead, row.status) == (1, 0, "pending")
            assert claim(engine, "early", now=now) == []  # not due before its backoff
            now = _aware(row.next_attempt_at)
        else:
            assert (retried, dead, row.status) == (0, 1, "dead")
            assert row.last_error == "HTTP 503"
    assert claim(engine, "later", now=now + timedelta(days=1)) == []


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_an_expired_claim_is_claimed_again_and_dies_after_the_last_attempt(engine, account):
    event_id = put(engine, event(account, 1)).id
    now = T0
    for attempt in range(1, POLICY.max_attempts + 1):
        [claimed] = claim(engine, f"c{attempt}", now=now)
        assert claimed.attempts == attempt
        assert claim(engine, "during-lease", now=now + LEASE / 2) == []
        now = now + LEASE + timedelta(seconds=1)  # the run holding it died
    assert claim(engine, "after", now=now) == []
    row = status_of(engine, event_id)
    assert row.status == "dead" and "claim expired" in row.last_error


def test_dead_events_can_be_retried_and_old_settled_ones_purged(engine, account):
    dead_id = put(engine, event(account, 1)).id
    with engine.begin() as conn:
        conn.execute(sa.update(webhook_events).values(status="dead", attempts=3))
    old = put(engine, event(account, 2), now=T0 - timedelta(days=40)).id
    claim(engine, "c1", now=T0 - timedelta(days=40))
    with engine.begin() as conn:
        settle_done(conn, [old], claim_id="c1", run_id="r", now=T0)
    put(
        engine,
        event(account, 3, obj="x"),
        entity=None,
        ignore_reason="not synced",
        now=T0 - timedelta(days=40),
    )

    assert retry_dead(engine, now=T0) == 1
    row = status_of(engine, dead_id)
    assert (row.status, row.attempts) == ("pending", 0)
    assert purge(engine, older_than=T0 - timedelta(days=30)) == 2
    assert queue_counts(engine) == {"pending": 1, "claimed": 0, "done": 0, "ignored": 0, "dead": 0}


def test_grouping_makes_one_run_per_account_and_entity():
    def claimed(event_id: int, account: str, entity: str, object_id: int) -> ClaimedEvent:
        return ClaimedEvent(event_id, account, entity, "x", object_id, "changed", 1)

    groups = group_claimed(
        [
            claimed(1, "a", "ingredients", 10),
            claimed(2, "a", "ingredients", 10),
            claimed(3, "a", "ingredients", 11),
            claimed(4, "a", "products", 10),
            claimed(5, "b", "ingredients", 10),
        ]
    )
    assert [(g.account, g.entity, g.object_ids, g.event_ids) for g in groups] == [
        ("a", "ingredients", (10, 11), (1, 2, 3)),
        ("a", "products", (10,), (4,)),
        ("b", "ingredients", (10,), (5,)),
    ]


def test_concurrent_claimers_never_claim_the_same_event(engine, account):
    # PostgreSQL skips rows another claimer locked; SQLite runs the claimers one at a time.
    for n in range(200):
        put(engine, event(f"{account}-{n % 20}", n))
    results: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        results[name] = [c.id for c in claim(engine, name, limit=60)]

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == len(set(claimed))


def test_a_second_delivery_after_the_fetch_asks_for_one_more(engine, account):
    delivery = event(account, 7)
    first = put(engine, delivery).id
    [claimed] = claim(engine, "c1")
    again = put(engine, delivery)  # the same second, a second change: in flight
    assert again.id == first and not again.duplicate
    assert status_of(engine, first).status == "pending"
    with engine.begin() as conn:  # the running fetch cannot settle it any more
        assert settle_done(conn, [claimed.id], claim_id="c1", run_id="r1", now=T0) == 0
    assert [c.id for c in claim(engine, "c2")] == [first]
    with engine.begin() as conn:
        settle_done(conn, [first], claim_id="c2", run_id="r2", now=T0)
    assert put(engine, delivery).id == first  # done: fetched once more
    assert put(engine, delivery).duplicate  # pending: nothing more to ask


def test_a_claim_can_be_renewed_or_given_back(engine, account):
    event_id = put(engine, event(account, 1)).id
    claim(engine, "c1")
    assert renew_claim(engine, "c1", now=T0 + LEASE, lease=LEASE) == 1
    assert claim(engine, "c2", now=T0 + LEASE + timedelta(seconds=1)) == []  # still held
    assert unclaim(engine, "c1", now=T0) == 1
    row = status_of(engine, event_id)
    assert (row.status, row.attempts) == ("pending", 0)


def test_events_of_entities_outside_the_catalogue_are_never_claimed(engine, account):
    put(engine, event(account, 1), entity="transactions")
    assert claim(engine) == []


def test_a_claim_owns_its_events_from_claimed_to_done_retried_or_given_back(engine, account):
    ids = [put(engine, event(account, n)).id for n in (1, 2, 3)]
    owner, claimed = Claim.take(engine, lease=LEASE, policy=POLICY, limit=100, now=T0)
    assert sorted(e.id for e in claimed if e.account == account) == ids
    # Another process rebuilds the claim from its id and finds the same events.
    again = Claim(owner.id, engine, LEASE, POLICY)
    assert [e.id for e in again.events() if e.account == account] == ids
    done, failed, untried = ids
    with engine.begin() as conn:
        assert again.settle(conn, [done], run_id="r1", now=T0) == 1
    assert again.fail([failed], error="HTTP 500", now=T0) == (1, 0)
    assert again.give_back(now=T0, event_ids=[untried], delay=timedelta(seconds=5)) == 1
    rows = {i: status_of(engine, i) for i in ids}
    assert rows[done].status == "done"
    assert (rows[failed].status, rows[failed].attempts) == ("pending", 1)
    assert (rows[untried].status, rows[untried].attempts) == ("pending", 0)  # not counted
    assert as_utc(rows[untried].next_attempt_at) == T0 + timedelta(seconds=5)
    assert again.events() == []


def test_groups_know_which_events_named_each_object_and_what_was_removed():
    def claimed(event_id: int, object_id: int, action: str) -> ClaimedEvent:
        return ClaimedEvent(event_id, "a", "products", "product", object_id, action, 1)

    [group] = group_claimed(
        [
            claimed(1, 10, "changed"),
            claimed(2, 11, "removed"),
            claimed(3, 10, "removed"),
            claimed(4, 11, "added"),
        ]
    )
    assert group.event_ids_of([10]) == (1, 3)
    assert group.removed == {10}  # 11 came back after its removal
