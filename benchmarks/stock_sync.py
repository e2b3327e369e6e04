"""Benchmark 5: the stock full sync of many storages, and a burst of stock webhooks.

An emulator process serves 50 live storages × 2,000 ingredients (smoke: 4 × 200); the stock
sync lists the storages and then reads each storage's leftovers (``zero_leftovers=true``), all
streamed into one load transaction:

- ``throttled``: as against the real Poster, the client keeping to its default per-account
  rate (5 requests/s, poster/throttle.py): the calls, not the rows, set the time;
- ``unthrottled``: the same sync with the throttle out of the way, against
- ``limit``: the same answers fetched with ``requests``, parsed with ``json`` and COPYed with
  psycopg into an UNLOGGED table without constraints, nothing else;
- ``unchanged re-sync``: nothing changed, so no row may be written.

Then 1,000 ``stock`` events spread over 5 storages are queued the way the receiver stores them
and one drain applies them: each storage is re-read once, so at most 5 Poster calls.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
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
from benchmarks.stack import ACCOUNT, Warehouse, bench_warehouse, running, start_emulator
from poster_pipeline.catalogue import FieldType, entity
from poster_pipeline.orchestration.resources import PosterApiResource, WarehouseResource
from poster_pipeline.poster.webhooks import WebhookEvent
from poster_pipeline.sync import SyncServices, run_full_sync
from poster_pipeline.sync.drain import drain
from poster_pipeline.warehouse.guard import DeletionGuard
from poster_pipeline.warehouse.queue import Claim, RetryPolicy, enqueue

NAME = "stock sync"
STOCK = entity("stock")
LIMIT_TABLE = "bench_limit_stock"
RATIO_TARGET = 2.0
BURST_EVENTS, BURST_STORAGES = 1_000, 5
THROTTLED_RATE = 5.0  # ClientSettings' default: the per-account rate kept against Poster


def services(api_url: str, warehouse: Warehouse, rate: float) -> SyncServices:
    # The token key is given, so the data folder (the embedded default's) is never written.
    resource = WarehouseResource(
        database_url=warehouse.url, data_dir=tempfile.gettempdir(), token_key=warehouse.token_key
    )
    return SyncServices(
        engine=resource.engine(),
        token_for=resource.accounts(with_tokens=True).token,
        client_for=PosterApiResource(base_url=api_url, requests_per_second=rate).client,
    )


def sync_once(api_url: str, warehouse: Warehouse, rate: float) -> dict[str, Any]:
    started = time.perf_counter()
    result = run_full_sync(
        services(api_url, warehouse, rate), STOCK, ACCOUNT.name, guard=DeletionGuard()
    )
    report = result.report
    return {
        "seconds": time.perf_counter() - started,
        "calls": result.api_calls,
        "rows": report.fetched,
        "written": report.changed,
    }


def live_storages(url: str) -> list[int]:
    listed = requests.get(f"{url}/control/{ACCOUNT.name}/storages", timeout=30).json()
    return [s["storage_id"] for s in listed if not s["delete"]]


def warm(api_url: str, storages: Sequence[int]) -> None:
    """Ask for every answer once: the emulator serialises a list on first use, and that is
    the emulator's time, not the sync's or the limit's."""
    with requests.Session() as session:
        for storage_id in storages:
            session.get(
                f"{api_url}/{STOCK.list_method}",
                params={"token": ACCOUNT.token, "storage_id": storage_id, "zero_leftovers": "true"},
                timeout=120,
            ).raise_for_status()


def measure_limit(api_url: str, warehouse: Warehouse, storages: Sequence[int]) -> dict[str, Any]:
    """The same answers, fetched, parsed and COPYed into an UNLOGGED table: nothing else."""
    json_fields = {f.name for f in STOCK.fields if f.type is FieldType.JSON}
    columns = [*STOCK.field_names, "raw"]
    rows = 0
    with psycopg.connect(warehouse.url.replace("+psycopg", "")) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {LIMIT_TABLE}")
        conn.execute(f"CREATE UNLOGGED TABLE {LIMIT_TABLE} AS SELECT * FROM stock WITH NO DATA")
        conn.commit()
        started = time.perf_counter()
        with requests.Session() as session:
            session.get(f"{api_url}/storage.getStorages", params={"token": ACCOUNT.token})
            statement = f"COPY {LIMIT_TABLE} ({', '.join(columns)}) FROM STDIN"
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                for storage_id in storages:
                    answer = session.get(
                        f"{api_url}/{STOCK.list_method}",
                        params={
                            "token": ACCOUNT.token,
                            "storage_id": storage_id,
                            "zero_leftovers": "true",
                        },
                        timeout=60,
                    )
                    for raw in json.loads(answer.content)["response"]:
                        values = {**raw, "storage_id": storage_id}
                        row = [
                            json.dumps(values.get(f)) if f in json_fields else values.get(f)
                            for f in STOCK.field_names
                        ]
                        row.append(json.dumps(raw, ensure_ascii=False))
                        copy.write_row(row)
                        rows += 1
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {LIMIT_TABLE}")
    return {"seconds": seconds, "rows": rows, "calls": 1 + len(storages)}


def empty_stock(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE stock"))
        conn.execute(sa.text("DELETE FROM sync_status"))


def burst(url: str, warehouse: Warehouse, storages: Sequence[int], events: int) -> dict[str, Any]:
    """``events`` stock hooks over ``storages``, queued as the receiver stores them, applied
    by one drain; the emulator counts the calls it answered."""
    engine = warehouse.engine()
    times = itertools.count(1_780_000_000)
    with engine.begin() as conn:
        for n in range(events):
            storage_id = storages[n % len(storages)]
            data = json.dumps({"type": 1, "element_id": n + 1, "storage_id": storage_id})
            event = WebhookEvent(
                account=ACCOUNT.name,
                object="stock",
                object_id=n + 1,
                action="changed",
                time=str(next(times)),
                verify="0" * 32,
                data=data,
            )
            enqueue(conn, event, {}, entity="stock", now=datetime.now(UTC))
    requests.delete(f"{url}/control/calls", timeout=10).raise_for_status()
    claim, claimed = Claim.take(
        engine,
        lease=timedelta(minutes=10),
        policy=RetryPolicy(),
        limit=10_000,
        now=datetime.now(UTC),
    )
    started = time.perf_counter()
    results = list(drain(services(f"{url}/api", warehouse, 1000), claim, claimed, run_id="bench"))
    seconds = time.perf_counter() - started
    engine.dispose()
    settled = sum(r.settled for r in results)
    if settled != events or any(not r.ok for r in results):
        raise BenchmarkBroken(f"the burst settled {settled} of {events} events: {results}")
    calls = requests.get(f"{url}/control/calls", timeout=10).json()["total"]
    return {"calls": calls, "seconds": seconds, "events": events, "storages": len(storages)}


def figures_for(
    size: str,
    throttled: dict[str, Any],
    unthrottled: dict[str, Any],
    resync: dict[str, Any],
    limit: dict[str, Any],
    hooks: dict[str, Any],
    smoke: bool,
) -> list[Figure]:
    ratio = unthrottled["seconds"] / limit["seconds"]
    return [
        Figure(NAME, f"{size}: rows", unthrottled["rows"], "rows"),
        Figure(
            NAME,
            f"{size}: Poster calls of a full sync",
            throttled["calls"],
            "calls",
            reference="storages list + one leftovers call per live storage",
        ),
        Figure(
            NAME,
            f"{size}: full sync at {THROTTLED_RATE:g} req/s (as against Poster)",
            throttled["seconds"],
            "s",
            reference=f"the calls alone take ≥ {(throttled['calls'] - 1) / THROTTLED_RATE:.1f} s",
        ),
        Figure(NAME, f"{size}: full sync, unthrottled", unthrottled["seconds"], "s"),
        Figure(
            NAME,
            f"{size}: limit (fetch+json+COPY unlogged)",
            limit["seconds"],
            "s",
            reference=f"{limit['calls']} calls",
        ),
        Figure(
            NAME,
            f"{size}: unthrottled / limit",
            ratio,
            "×",
            f"≤ {RATIO_TARGET:g}× limit",
            at_most(RATIO_TARGET, smoke)(ratio),
        ),
        Figure(
            NAME,
            f"{size}: rows written by an unchanged re-sync",
            resync["written"],
            "rows",
            "0",
            at_most(0, smoke)(resync["written"]),
            reference=f"re-sync {resync['seconds']:.2f} s",
        ),
        Figure(
            NAME,
            f"burst of {hooks['events']:,} stock events on {hooks['storages']} storages: calls",
            hooks["calls"],
            "calls",
            f"≤ {hooks['storages']}",
            at_most(hooks["storages"], smoke)(hooks["calls"]),
            reference=f"applied in {hooks['seconds']:.2f} s",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    args = parser.parse_args(argv)
    # One more storage than is live: the emulator lists the last of 3+ with delete "1".
    storages, ingredients = (6, 200) if args.smoke else (51, 2_000)
    events = 50 if args.smoke else BURST_EVENTS
    warehouse = bench_warehouse()
    with tempfile.TemporaryDirectory(prefix="bench-stock-") as tmp, running([]) as processes:
        emulator = start_emulator(
            Path(tmp), sizes={"storages": storages, "ingredients": ingredients}
        )
        processes.append(emulator.process)
        live = live_storages(emulator.url)
        warm(emulator.api_url, live)
        limit = measure_limit(emulator.api_url, warehouse, live)
        engine = warehouse.engine()
        empty_stock(engine)
        throttled = sync_once(emulator.api_url, warehouse, THROTTLED_RATE)
        empty_stock(engine)
        unthrottled = sync_once(emulator.api_url, warehouse, 1000)
        resync = sync_once(emulator.api_url, warehouse, 1000)
        engine.dispose()
        if not throttled["rows"] == unthrottled["rows"] == limit["rows"]:
            raise BenchmarkBroken(f"rows differ: {throttled}, {unthrottled}, {limit}")
        hooks = burst(emulator.url, warehouse, live[:BURST_STORAGES], events)
    size = f"{len(live)} storages × {ingredients:,} ingredients"
    figures = figures_for(size, throttled, unthrottled, resync, limit, hooks, args.smoke)
    print_figures(NAME, figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
