"""03:00 local, per restaurant: the pure rule, then the schedule ticking through two days."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.orchestration.assets import entity_assets
from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.nightly import due_nightly, nightly_instant
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.orchestration.schedules import (
    NIGHTLY_LOOKBACK,
    NIGHTLY_TICK,
    nightly_full_sync_schedule,
)
from poster_pipeline.orchestration.tags import PARTITION_TAG, RUN_KEY_TAG
from poster_pipeline.warehouse.schema import accounts
from tests.databases import fresh_engine, postgres_url

KYIV, NEW_YORK, KOLKATA = "Europe/Kyiv", "America/New_York", "Asia/Kolkata"
FALLBACK = "Asia/Tokyo"  # POSTER_TIMEZONE in these tests: +09:00, no daylight saving
ZONES = {"kyiv": KYIV, "new-york": NEW_YORK, "kolkata": KOLKATA, "no-zone": FALLBACK}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ticks(start: datetime, hours: int) -> list[datetime]:
    return [start + NIGHTLY_TICK * k for k in range(1, hours * 4 + 1)]


def local(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (KYIV, date(2026, 12, 2), utc(2026, 12, 2, 1)),  # winter, +02:00
        (KYIV, date(2026, 7, 2), utc(2026, 7, 2, 0)),  # summer, +03:00
        (NEW_YORK, date(2026, 12, 2), utc(2026, 12, 2, 8)),
        (KOLKATA, date(2026, 12, 2), utc(2026, 12, 1, 21, 30)),  # +05:30: the day before
        # Kyiv springs forward at 03:00 → 04:00: no 03:00 that night, due at the jump.
        (KYIV, date(2026, 3, 29), utc(2026, 3, 29, 1)),
        # Kyiv falls back at 04:00 → 03:00: 03:00 happens twice, due at the first.
        (KYIV, date(2026, 10, 25), utc(2026, 10, 25, 0)),
        # New York changes at 02:00: 03:00 exists both nights, at the new offset.
        (NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 7)),
        (NEW_YORK, date(2026, 11, 1), utc(2026, 11, 1, 8)),
        # Samoa skipped 2011-12-30 altogether: no such local date, no sync.
        ("Pacific/Apia", date(2011, 12, 30), None),
        ("Pacific/Apia", date(2011, 12, 31), utc(2011, 12, 30, 13)),
    ],
)
def test_the_nightly_instant_of_a_local_date(zone, day, expected):
    assert nightly_instant(day, ZoneInfo(zone)) == expected


def test_inside_a_gap_the_first_instant_after_the_wall_time_is_the_jump():
    # New York skips 02:00–03:00 on 2026-03-08: 02:30 "happens" at 03:00 EDT.
    assert nightly_instant(date(2026, 3, 8), ZoneInfo(NEW_YORK), time(2, 30)) == utc(2026, 3, 8, 7)


@pytest.mark.parametrize(
    "start",
    [
        utc(2026, 3, 7, 12),  # New York springs forward on the 8th
        utc(2026, 3, 28, 12),  # Kyiv springs forward on the 29th
        utc(2026, 10, 24, 12),  # Kyiv falls back on the 25th
        utc(2026, 10, 31, 12),  # New York falls back on 1 November
        utc(2026, 6, 15, 12),  # an ordinary summer pair of days
    ],
)
def test_ticking_through_two_days_each_account_is_due_once_per_local_date(start):
    due = [d for t in ticks(start, 48) for d in due_nightly(ZONES, t - NIGHTLY_TICK, t)]

    per_date = Counter((d.account, d.local_date) for d in due)
    assert set(per_date.values()) == {1}
    # From noon UTC, 48 hours hold two local 03:00s in each of these zones. (From midnight
    # UTC, a day shortened by the spring jump would fit a third for Kyiv, at the very end.)
    assert Counter(d.account for d in due) == dict.fromkeys(ZONES, 2)
    for d in due:
        wall = local(d.due_at, d.time_zone)
        assert wall.date() == d.local_date
        # 03:00 sharp, except when 03:00 does not exist (Kyiv's spring jump goes to 04:00).
        assert wall.time() == time(3) or (d.time_zone, d.local_date) == (KYIV, date(2026, 3, 29))


def test_a_window_spanning_days_yields_each_local_date():
    due = due_nightly({"kyiv": KYIV}, utc(2026, 12, 1), utc(2026, 12, 4))
    assert [d.local_date for d in due] == [date(2026, 12, d) for d in (1, 2, 3)]


def test_the_window_is_half_open():
    at_three = utc(2026, 12, 2, 1)  # 03:00 in Kyiv
    assert due_nightly({"kyiv": KYIV}, at_three - NIGHTLY_TICK, at_three)
    assert not due_nightly({"kyiv": KYIV}, at_three, at_three + NIGHTLY_TICK)


def test_an_unknown_time_zone_is_an_error_a_person_can_act_on():
    with pytest.raises(ValueError, match="'Mars/Olympus' is not an IANA time zone"):
        due_nightly({"a": "Mars/Olympus"}, utc(2026, 12, 1), utc(2026, 12, 2))
    with pytest.raises(ValueError, match="not an IANA time zone"):
        nightly_full_sync_schedule("Mars/Olympus")


# The schedule itself, evaluated tick by tick as the daemon would.


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    fresh_engine("postgresql", tmp_path).dispose()
    resource = WarehouseResource(
        database_url=postgres_url(),
        data_dir=str(tmp_path),
        token_key=Fernet.generate_key().decode(),
    )
    store = resource.accounts(with_tokens=True)
    for number, (account, zone) in enumerate(ZONES.items(), start=1):
        stored = None if zone == FALLBACK else zone
        store.add(account, f"{number}:" + "a" * 32, now=utc(2026, 1, 1), time_zone=stored)
    store.add("broken-zone", "9:" + "a" * 32, now=utc(2026, 1, 1))
    with resource.engine().begin() as conn:  # add() refuses it; a hand edit or an old row has it
        conn.execute(
            sa.update(accounts).where(accounts.c.account == "broken-zone").values(time_zone="Mars")
        )
    store.add("deactivated", "8:" + "a" * 32, now=utc(2026, 1, 1), time_zone=KYIV)
    store.deactivate("deactivated", now=utc(2026, 1, 1))
    return resource


def run_schedule(warehouse: WarehouseResource, at: list[datetime]) -> list[dg.RunRequest]:
    schedule = nightly_full_sync_schedule(FALLBACK)
    defs = dg.Definitions(
        assets=entity_assets(timedelta(hours=24)),
        jobs=[full_sync_job],
        schedules=[schedule],
        resources={
            "poster_api": PosterApiResource(),
            "warehouse": warehouse,
            "webhook_queue": WebhookQueueResource(),
        },
    )
    requests: list[dg.RunRequest] = []
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ACCOUNTS, [*ZONES, "broken-zone", "deactivated"])
        for tick in at:
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick,
                resources={"warehouse": warehouse},
                repository_def=defs.get_repository_def(),
            ) as context:
                result = schedule.evaluate_tick(context)
            for request in result.run_requests or []:
                zone, day = request.tags["poster/time_zone"], request.tags["poster/nightly_date"]
                assert local(tick, zone).date().isoformat() == day
                requests.append(request)
                # What the daemon does with a request: a run tagged with its schedule.
                instance.create_run_for_job(
                    job_def=defs.resolve_job_def(full_sync_job.name),
                    tags={
                        **request.tags,
                        **dg.DagsterRun.tags_for_schedule(schedule),
                        PARTITION_TAG: request.partition_key,
                        RUN_KEY_TAG: request.run_key,
                    },
                )
    return requests


@pytest.mark.parametrize(
    ("start", "expected_dates"),
    [
        # From 16:00 UTC: the first tick's lookback holds nobody's 03:00 (a schedule that just
        # started catches up a 03:00 of the last few hours, as after an outage).
        (utc(2026, 3, 28, 16), ["2026-03-29", "2026-03-30"]),  # Kyiv springs forward: 03→04
        (utc(2026, 10, 31, 16), ["2026-11-01", "2026-11-02"]),  # New York falls back: 02→01
    ],
)
def test_the_schedule_syncs_each_account_once_per_local_date_over_48_hours(
    warehouse, start, expected_dates
):
    requests = run_schedule(warehouse, ticks(start, 48))

    dates: dict[str, list[str]] = {}
    for request in requests:
        dates.setdefault(request.partition_key, []).append(request.tags["poster/nightly_date"])
    # Each once, in order; the broken zone falls back to POSTER_TIMEZONE; never the deactivated.
    assert dates == dict.fromkeys([*ZONES, "broken-zone"], expected_dates)
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(r.tags["poster/sync"] == "full" for r in requests)
    assert {r.tags["poster/time_zone"] for r in requests if r.partition_key == "no-zone"} == {
        FALLBACK
    }


def test_the_tick_at_three_local_requests_that_account_and_a_retry_asks_the_same_run_key(
    warehouse,
):
    three_in_kolkata = utc(2026, 12, 1, 21, 30)

    def kolkata(at: datetime) -> list[str]:
        return [r.run_key for r in run_schedule(warehouse, [at]) if r.partition_key == "kolkata"]

    assert kolkata(three_in_kolkata - NIGHTLY_TICK) == []
    assert kolkata(three_in_kolkata) == ["nightly:kolkata:2026-12-02"]
    # The daemon retrying the tick asks the same run key, so it launches nothing twice.
    assert kolkata(three_in_kolkata) == ["nightly:kolkata:2026-12-02"]


def test_ticks_missed_while_the_daemon_was_down_are_caught_up_once(warehouse):
    # Dagster evaluates only the latest tick of this schedule after an outage: Kyiv's 03:00
    # (01:00 UTC) fell while the daemon was down from 00:50 to 02:40 UTC.
    before, after = utc(2026, 12, 2, 0, 45), utc(2026, 12, 2, 2, 45)
    requests = run_schedule(warehouse, [before, after, after + NIGHTLY_TICK])
    assert [r.run_key for r in requests if r.partition_key == "kyiv"] == ["nightly:kyiv:2026-12-02"]
    # Beyond the lookback, the nightly sync of that date is left to smart sync.
    late = run_schedule(warehouse, [utc(2026, 12, 2, 1) + NIGHTLY_LOOKBACK + NIGHTLY_TICK])
    assert "kyiv" not in {r.partition_key for r in late}
