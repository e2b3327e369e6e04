"""The operators' page with 500 restaurants: how long a page takes and how many queries it costs.

    python -m benchmarks.dashboard            # 500 restaurants, 200,000 settled queue events
    python -m benchmarks.dashboard --smoke    # 50 restaurants, 2,000 events

The warehouse is the ``_bench`` database, filled in SQL: every restaurant has a
``sync_status`` row per catalogue entity (every tenth with a failed full sync), and the queue
holds settled events plus a few pending and dead ones per restaurant. Each page (the first
one, a later one, the failing filter, a name filter) is asked for through the app in this
process (``GET /dashboard`` with the bearer key), so the figure is the server's time to
answer: the queries and the rendering, not the network.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from benchmarks.figures import (
    Figure,
    at_most,
    common_arguments,
    median,
    print_figures,
    write_figures,
)
from benchmarks.stack import bench_warehouse, machine_summary
from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.http import ReceiverSettings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NAME = "dashboard"
API_KEY = "bench-dashboard-key"
REPEATS = 20
PAGES = {
    "first page": "",
    "page 5": "?page=5",
    "failing filter": "?state=failing",
    "name filter": "?q=r04",
}
TARGET_SECONDS = 0.3


def fill(engine: sa.Engine, restaurants: int, events: int) -> None:
    """``restaurants`` active accounts ``r000``…, their sync status, and ``events`` queue events."""
    names = [f"r{n:03d}" for n in range(restaurants)]
    entities = [spec.name for spec in ENTITIES]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO accounts (account, token_encrypted, auth_method, is_active,"
                " connected_at, updated_at)"
                " SELECT a, 'not-a-token', 'personal', true, :now, :now"
                " FROM unnest(CAST(:names AS text[])) a"
            ),
            {"names": names, "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO sync_status (account, entity, last_full_sync_at, last_attempt_at,"
                " last_full_attempt_at, last_success, rows_active, rows_total, last_full_error,"
                " last_full_error_at)"
                " SELECT a, e, :now, :now, :now, true, 100, 100,"
                "   CASE WHEN right(a, 1) = '0' AND e = 'products' THEN 'HTTP 500' END,"
                "   CASE WHEN right(a, 1) = '0' AND e = 'products' THEN CAST(:now AS timestamptz)"
                "   END"
                " FROM unnest(CAST(:names AS text[])) a, unnest(CAST(:entities AS text[])) e"
            ),
            {"names": names, "entities": entities, "now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO webhook_events (dedup_key, account, object, object_id, action,"
                " event_time, entity, status, attempts, next_attempt_at, received_at,"
                " updated_at, payload)"
                " SELECT 'bench-' || i, 'r' || lpad((i % :restaurants)::text, 3, '0'),"
                "   'ingredient', i, 'changed', 0, 'ingredients',"
                "   CASE WHEN i % 50 = 0 THEN 'pending' WHEN i % 97 = 0 THEN 'dead'"
                "   ELSE 'done' END, 1, :now, :now - (i || ' seconds')::interval, :now, '{}'"
                " FROM generate_series(1, :events) i"
            ),
            {"restaurants": restaurants, "events": events, "now": now},
        )
        conn.execute(sa.text("ANALYZE"))


def measure(client: TestClient, engine: sa.Engine, query: str) -> tuple[float, int]:
    """The median seconds of ``REPEATS`` answers to ``query``, and the queries one costs."""
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    headers = {"Authorization": f"Bearer {API_KEY}"}
    client.get(f"/dashboard{query}", headers=headers).raise_for_status()  # warm
    sa.event.listen(engine, "before_cursor_execute", count)
    client.get(f"/dashboard{query}", headers=headers).raise_for_status()
    sa.event.remove(engine, "before_cursor_execute", count)
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = client.get(f"/dashboard{query}", headers=headers)
        seconds.append(time.perf_counter() - started)
        answer.raise_for_status()
    return median(seconds), statements


def main(argv: Sequence[str] | None = None) -> int:
    parser = common_arguments(__doc__.split("\n", 1)[0])
    args = parser.parse_args(argv)
    restaurants, events = (50, 2_000) if args.smoke else (500, 200_000)
    warehouse = bench_warehouse(connect_account=False)
    engine = warehouse.engine()
    print(f"{NAME}: machine {machine_summary(engine)}")
    fill(engine, restaurants, events)
    settings = ReceiverSettings(application_secret="unused", api_key=API_KEY)
    figures = []
    with TestClient(create_app(settings, engine)) as client:
        for label, query in PAGES.items():
            seconds, statements = measure(client, engine, query)
            figures.append(
                Figure(
                    NAME,
                    f"{label}: median answer ({restaurants} restaurants, {events:,} events)",
                    seconds,
                    "s",
                    f"<= {TARGET_SECONDS} s",
                    at_most(TARGET_SECONDS, args.smoke)(seconds),
                )
            )
            figures.append(Figure(NAME, f"{label}: SQL statements", statements))
    engine.dispose()
    print_figures(f"{NAME} (GET /dashboard, in process)", figures)
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
