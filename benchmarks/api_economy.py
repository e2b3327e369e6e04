"""Benchmark 4: API economy: how many Poster calls the pipeline makes, by the emulator's count.

Poster limits and bills by calls, and a restaurant's webhooks come in bursts (a stock-take
changes hundreds of ingredients at once). Everything runs in this process against an emulator
process (2,000 ingredients, so 1,000 distinct ones can change; smoke: 200 and 20) and the
benchmark warehouse; the emulator's ``/control/calls`` counters are the measure:

- **burst on one entity**: 1,000 ingredients renamed in the emulator and their 1,000 webhooks
  queued as the receiver stores them; one tick of the ``webhook_queue`` sensor
  (``build_sensor_context``), and each of its run requests materialized. Target ≤ 2 calls.
- **burst over the 7 entities**: 1,000 events cycling over every webhook object of the
  catalogue (supplier, ingredient, ingredients_category, category, workshop, storage, product,
  dish) on live ids: the calls per entity and the fetch strategy chosen (single getters up to
  ``single_fetch_limit`` objects, else the list).
- **a quiet day**: no change in Poster. The nightly schedule's tick (03:00) is evaluated and its
  runs materialized; smart sync (``evaluate_automation_conditions``) is evaluated hourly over
  the 24 hours after it; the webhook sensor ticks on an empty queue. Calls per account per
  day. Then one evaluation 24 h + 1 min after the nightly run shows what smart sync asks for
  when the nightly run did not happen.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import requests
import sqlalchemy as sa

from benchmarks.figures import (
    BenchmarkBroken,
    Figure,
    at_most,
    common_arguments,
    print_figures,
    write_figures,
)
from benchmarks.stack import (
    ACCOUNT,
    Warehouse,
    bench_warehouse,
    machine_summary,
    running,
    start_emulator,
)
from poster_pipeline.catalogue import ENTITIES, entity_for_webhook_object
from poster_pipeline.orchestration.assets import entity_assets
from poster_pipeline.orchestration.drain import webhook_drain_job
from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.orchestration.schedules import nightly_full_sync_schedule
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.warehouse.queue import enqueue
from poster_pipeline.warehouse.schema import webhook_events
from sensors.webhooks import webhook_queue_sensor

NAME = "API economy"
BURST_TARGET = 2
DAY = timedelta(hours=24)
_times = itertools.count(1_760_000_000)


class Poster:
    """The emulator's call counters and the changes made through its control API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def reset_calls(self) -> None:
        self.session.delete(f"{self.url}/control/calls", timeout=10).raise_for_status()

    def calls(self) -> dict[str, int]:
        """Calls by method of the demo account since the last reset."""
        answer = self.session.get(f"{self.url}/control/calls", timeout=10)
        answer.raise_for_status()
        return dict(answer.json()["by_account"].get(ACCOUNT.name, {}))

    def live_ids(self, entity: str, **match: Any) -> list[int]:
        answer = self.session.get(f"{self.url}/control/{ACCOUNT.name}/{entity}", timeout=30)
        answer.raise_for_status()
        spec = next(s for s in ENTITIES if s.name == entity)
        return [
            item[spec.key]
            for item in answer.json()
            if not item.get("delete") and all(item.get(k) == v for k, v in match.items())
        ]

    def rename_ingredient(self, ingredient_id: int, name: str) -> None:
        self.session.patch(
            f"{self.url}/control/{ACCOUNT.name}/ingredients/{ingredient_id}",
            json={"ingredient_name": name},
            timeout=10,
        ).raise_for_status()


class Pipeline:
    """The project's assets, sensor and schedule, run in this process."""

    def __init__(
        self,
        poster: Poster,
        api_url: str,
        warehouse: Warehouse,
        data_dir: Path,
        instance: dg.DagsterInstance,
    ) -> None:
        self.poster = poster
        self.engine = warehouse.engine()
        self.warehouse = WarehouseResource(
            database_url=warehouse.url, data_dir=str(data_dir), token_key=warehouse.token_key
        )
        self.queue = WebhookQueueResource()
        # Smart sync's condition reads this warehouse, as the code location's does.
        self.assets = {a.key: a for a in entity_assets(DAY, warehouse=self.warehouse)}
        self.resources = {
            "poster_api": PosterApiResource(base_url=api_url, max_retries=0),
            "warehouse": self.warehouse,
            "webhook_queue": self.queue,
        }
        self.instance = instance  # with a storage folder: schedules need an instance ref
        self.instance.add_dynamic_partitions(ACCOUNTS, [ACCOUNT.name])
        self.cursor: str | None = None

    def materialize(self, keys: Sequence[dg.AssetKey], request: dg.RunRequest) -> None:
        result = dg.materialize(
            [self.assets[key] for key in keys],
            partition_key=request.partition_key,
            instance=self.instance,
            run_config=request.run_config,
            tags=request.tags,
            resources=self.resources,
            raise_on_error=False,
        )
        if not result.success:
            raise BenchmarkBroken(f"a run of {[k.to_user_string() for k in keys]} failed")

    def full_sync(self) -> None:
        self.materialize(list(self.assets), dg.RunRequest(partition_key=ACCOUNT.name))

    def queue_event(self, obj: str, object_id: int) -> None:
        """Store one webhook as the receiver does (the signature was checked there)."""
        event = WebhookEvent(
            account=ACCOUNT.name,
            object=obj,
            object_id=object_id,
            action="changed",
            time=str(next(_times)),
            verify="0" * 32,
        )
        entity = entity_for_webhook_object(obj).name
        with self.engine.begin() as conn:
            enqueue(conn, event, {"object": obj}, entity=entity, now=datetime.now(UTC))

    def sensor_tick(self) -> list[dg.RunRequest]:
        """One evaluation of the webhook sensor; its run requests are materialized."""
        context = dg.build_sensor_context(
            instance=self.instance,
            resources={"warehouse": self.warehouse, "webhook_queue": self.queue},
        )
        result = webhook_queue_sensor(context)
        requests_ = [] if isinstance(result, dg.SkipReason) else list(result.run_requests or [])
        for request in requests_:  # one webhook_drain run per tick
            drained = webhook_drain_job.execute_in_process(
                run_config=request.run_config,
                instance=self.instance,
                tags=request.tags,
                resources=self.resources,
                raise_on_error=False,
            )
            if not drained.success:
                raise BenchmarkBroken("a webhook_drain run failed")
        return requests_

    def pending_events(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).where(webhook_events.c.status != "done")
            ).scalar_one()

    def nightly(self, tick: datetime) -> list[dg.RunRequest]:
        schedule = nightly_full_sync_schedule("UTC")
        defs = dg.Definitions(
            assets=list(self.assets.values()),
            jobs=[full_sync_job],
            schedules=[schedule],
            resources=self.resources,
        )
        with dg.build_schedule_context(
            instance=self.instance,
            scheduled_execution_time=tick,
            resources={"warehouse": self.warehouse},
            repository_def=defs.get_repository_def(),
        ) as context:
            run_requests = list(schedule.evaluate_tick(context).run_requests or [])
        for request in run_requests:
            self.materialize(list(self.assets), request)
        return run_requests

    def smart_sync(self, at: datetime) -> int:
        """Evaluate smart sync at ``at``; materialize what it requests; returns how many
        (entity, account) syncs it asked for."""
        defs = dg.Definitions(assets=list(self.assets.values()), resources=self.resources)
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=self.instance, cursor=self.cursor, evaluation_time=at
        )
        self.cursor = result.cursor
        asked = 0
        for key in self.assets:
            for partition in result.get_requested_partitions(key):
                self.materialize([key], dg.RunRequest(partition_key=partition))
                asked += 1
        return asked


def counted(poster: Poster, action: Any) -> tuple[Any, dict[str, int]]:
    """Run ``action`` and return its result and the Poster calls it made, by method."""
    poster.reset_calls()
    result = action()
    return result, poster.calls()


def burst_on_one_entity(pipeline: Pipeline, size: int) -> tuple[dict[str, int], int]:
    ids = pipeline.poster.live_ids("ingredients")[:size]
    if len(ids) < size:
        raise BenchmarkBroken(f"only {len(ids)} live ingredients for a burst of {size}")
    for n, ingredient_id in enumerate(ids):
        pipeline.poster.rename_ingredient(ingredient_id, f"burst {n}")
        pipeline.queue_event("ingredient", ingredient_id)
    run_requests, calls = counted(pipeline.poster, pipeline.sensor_tick)
    if pipeline.pending_events():
        raise BenchmarkBroken(f"{pipeline.pending_events()} events left after the burst's runs")
    return calls, len(run_requests)


def spread_objects(poster: Poster) -> dict[str, list[int]]:
    """Live ids for every webhook object of the catalogue."""
    return {
        "supplier": poster.live_ids("suppliers"),
        "ingredient": poster.live_ids("ingredients"),
        "ingredients_category": poster.live_ids("ingredient_categories"),
        "category": poster.live_ids("product_categories"),
        "workshop": poster.live_ids("workshops"),
        "storage": poster.live_ids("storages"),
        "product": poster.live_ids("products", type=3),
        "dish": poster.live_ids("products", type=2),
    }


def burst_over_entities(pipeline: Pipeline, size: int) -> tuple[dict[str, int], int]:
    objects = spread_objects(pipeline.poster)
    cycle = itertools.cycle(sorted(objects))
    positions = dict.fromkeys(objects, 0)
    for _ in range(size):
        obj = next(cycle)
        ids = objects[obj]
        pipeline.queue_event(obj, ids[positions[obj] % len(ids)])
        positions[obj] += 1
    run_requests, calls = counted(pipeline.poster, pipeline.sensor_tick)
    if pipeline.pending_events():
        raise BenchmarkBroken(f"{pipeline.pending_events()} events left after the burst's runs")
    return calls, len(run_requests)


def quiet_day(pipeline: Pipeline) -> dict[str, Any]:
    """The nightly run, then hourly smart-sync evaluations and webhook-sensor ticks."""
    now = datetime.now(UTC)
    tick = now.replace(hour=3, minute=0, second=0, microsecond=0)
    nightly_runs, nightly_calls = counted(pipeline.poster, lambda: pipeline.nightly(tick))
    synced_at = datetime.now(UTC)

    def day() -> tuple[int, int]:
        asked = sum(pipeline.smart_sync(synced_at + timedelta(hours=h)) for h in range(1, 24))
        asked += pipeline.smart_sync(synced_at + DAY - timedelta(minutes=1))
        ticks = sum(len(pipeline.sensor_tick()) for _ in range(24))
        return asked, ticks

    (smart_asked, sensor_runs), day_calls = counted(pipeline.poster, day)
    missed_night, missed_calls = counted(
        pipeline.poster, lambda: pipeline.smart_sync(synced_at + DAY + timedelta(minutes=1))
    )
    return {
        "nightly_runs": len(nightly_runs),
        "nightly_calls": nightly_calls,
        "smart_asked": smart_asked,
        "sensor_runs": sensor_runs,
        "day_calls": day_calls,
        "missed_night_asked": missed_night,
        "missed_night_calls": missed_calls,
    }


def by_method(calls: dict[str, int]) -> str:
    return ", ".join(f"{method} {count}" for method, count in sorted(calls.items())) or "none"


def figures_for(
    one: tuple[dict[str, int], int],
    spread: tuple[dict[str, int], int],
    day: dict[str, Any],
    burst_size: int,
    smoke: bool,
) -> list[Figure]:
    one_calls, one_runs = sum(one[0].values()), one[1]
    spread_calls = sum(spread[0].values())
    nightly = sum(day["nightly_calls"].values())
    daily = nightly + sum(day["day_calls"].values())
    return [
        Figure(
            NAME,
            f"burst of {burst_size:,} events on one entity",
            one_calls,
            "calls",
            f"≤ {BURST_TARGET}",
            at_most(BURST_TARGET, smoke)(one_calls),
            f"{one_runs} run(s); {by_method(one[0])}",
        ),
        Figure(
            NAME,
            f"burst of {burst_size:,} events over the 7 entities",
            spread_calls,
            "calls",
            reference=f"{spread[1]} runs; {by_method(spread[0])}",
        ),
        Figure(
            NAME,
            "quiet day: nightly full sync",
            nightly,
            "calls",
            reference=f"{day['nightly_runs']} run(s); {by_method(day['nightly_calls'])}",
        ),
        Figure(
            NAME,
            "quiet day: smart sync + webhook sensor (24 h)",
            sum(day["day_calls"].values()),
            "calls",
            reference=f"smart sync asked {day['smart_asked']} syncs in 24 hourly evaluations; "
            f"sensor ran {day['sensor_runs']} runs in 24 ticks",
        ),
        Figure(NAME, "quiet day: calls per account per day", daily, "calls"),
        Figure(
            NAME,
            "no nightly run: smart sync at 24 h + 1 min",
            sum(day["missed_night_calls"].values()),
            "calls",
            reference=f"{day['missed_night_asked']} entity syncs asked (the safety net)",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    args = parser.parse_args(argv)
    burst_size = 20 if args.smoke else 1_000
    ingredients = 200 if args.smoke else 2_000
    warehouse = bench_warehouse()
    with (
        tempfile.TemporaryDirectory(prefix="bench-economy-") as tmp,
        running([]) as processes,
        dg.instance_for_test() as instance,
    ):
        emulator = start_emulator(Path(tmp), sizes={"ingredients": ingredients})
        processes.append(emulator.process)
        poster = Poster(emulator.url)
        pipeline = Pipeline(poster, emulator.api_url, warehouse, Path(tmp) / "data", instance)
        print(f"{NAME}: machine {machine_summary(pipeline.engine)}")
        pipeline.full_sync()  # the account's first sync, not counted
        one = burst_on_one_entity(pipeline, burst_size)
        spread = burst_over_entities(pipeline, burst_size)
        day = quiet_day(pipeline)
        pipeline.engine.dispose()
    figures = figures_for(one, spread, day, burst_size, args.smoke)
    print_figures(f"{NAME} (emulator call counters, demo account)", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
