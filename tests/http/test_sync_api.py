"""The sync API over HTTP (PostgreSQL, a database of its own): auth, validation, smart vs
force, the rate limit, the status report and the per-entity aliases; then the pure planning
rules without a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.http import ReceiverSettings, create_app
from poster_pipeline.http.database import receiver_engine
from poster_pipeline.http.sync_plan import (
    SyncPolicy,
    SyncSelection,
    iso,
    plan_sync,
)
from poster_pipeline.warehouse.migrate import VERSION_TABLE, downgrade, upgrade
from poster_pipeline.warehouse.oauth_states import oauth_states
from poster_pipeline.warehouse.schema import accounts, metadata, sync_status
from poster_pipeline.warehouse.status import SyncKind, SyncState, record_failure, record_success
from poster_pipeline.warehouse.sync_requests import RequestHistory, mark_launched, sync_requests
from tests.databases import fresh_engine
from tests.http.conftest import TestClient

API_KEY = "test-sync-api-key-4f1d9c"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SYNC = "/api/poster/sync"
ACTIVE = ("api-demo", "second-cafe")
INACTIVE = "closed-cafe"
ALL_ENTITIES = [spec.name for spec in ENTITIES]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = fresh_engine("postgresql", tmp_path_factory.mktemp("api"), "_api")
    yield engine
    engine.dispose()


@pytest.fixture
def engine(warehouse: Engine) -> Engine:
    """The warehouse with two active accounts and an inactive one, no status, no requests."""
    now = datetime.now(UTC)
    with warehouse.begin() as conn:
        for table in (sync_requests, sync_status, accounts):
            conn.execute(sa.delete(table))
        conn.execute(
            sa.insert(accounts),
            [
                {
                    "account": name,
                    "token_encrypted": "not-a-token",
                    "auth_method": "personal",
                    "is_active": name != INACTIVE,
                    "connected_at": now,
                    "updated_at": now,
                }
                for name in (*ACTIVE, INACTIVE)
            ],
        )
    return warehouse


def app_client(engine: Engine, **settings: Any) -> TestClient:
    settings = {"application_secret": "webhook-secret", "api_key": API_KEY, **settings}
    return TestClient(create_app(ReceiverSettings(**settings), engine))


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with app_client(engine) as client:
        yield client


def post(client: TestClient, body: Any = None, path: str = SYNC, **headers: str) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    kind = {} if body is None else {"Content-Type": "application/json"}
    return client.post(path, content=content, headers={**AUTH, **kind, **headers})


def seed_status(
    engine: Engine,
    account: str,
    entity: str,
    *,
    full: timedelta | None,
    attempt: timedelta | None = None,
    partial: timedelta | None = None,
    full_error: str | None = None,
) -> None:
    """A sync_status row; the arguments are how long ago each thing happened, and why the
    last full attempt failed, if it did."""
    now = datetime.now(UTC)

    def ago(delta: timedelta | None) -> datetime | None:
        return None if delta is None else now - delta

    last_attempt = attempt if attempt is not None else (full if full is not None else partial)
    assert last_attempt is not None
    with engine.begin() as conn:
        conn.execute(
            sa.insert(sync_status).values(
                account=account,
                entity=entity,
                last_full_sync_at=ago(full),
                last_partial_sync_at=ago(partial),
                last_attempt_at=ago(last_attempt),
                last_full_attempt_at=ago(attempt if attempt is not None else full),
                last_success=full_error is None,
                last_error=full_error,
                last_full_error=full_error,
                last_full_error_at=None if full_error is None else ago(last_attempt),
            )
        )


def stored(engine: Engine) -> list[tuple[str, str, bool, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                sync_requests.c.account,
                sync_requests.c.entity,
                sync_requests.c.force,
                sync_requests.c.status,
            ).order_by(sync_requests.c.id)
        )
        return [tuple(row) for row in rows]


def pairs(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(item["account"], item["entity"]) for item in items}


def reason(answer: httpx.Response, account: str, entity: str) -> str:
    [item] = [
        s for s in answer.json()["skipped"] if (s["account"], s["entity"]) == (account, entity)
    ]
    return item["reason"]


# --- authentication ------------------------------------------------------------------------


def test_without_an_api_key_the_api_is_disabled_and_webhooks_stay_open(engine: Engine):
    with app_client(engine, api_key=None) as client:
        for answer in (client.get(SYNC, headers=AUTH), post(client, {"force": True})):
            assert answer.status_code == 503
            assert answer.json() == {
                "success": False,
                "error": "sync API disabled: set POSTER_API_KEY",
            }
        assert client.get("/api/poster/webhooks").json() == {"status": "ok"}
    assert stored(engine) == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": API_KEY},
    ],
)
def test_a_request_without_bearer_credentials_is_401(client: TestClient, headers: dict):
    for answer in (
        client.get(SYNC, headers=headers),
        client.get(SYNC, params={"account": "api-demo"}, headers=headers),
        client.get(SYNC, params={"account": "no-such-cafe"}, headers=headers),
        client.post(SYNC, headers=headers),
        client.post("/api/sync-ingredients", headers=headers),
    ):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="poster-pipeline"'
        assert answer.json()["success"] is False


def test_a_wrong_key_is_401_and_never_echoed(client: TestClient, engine: Engine, caplog):
    wrong = API_KEY + "x"
    answer = client.post(SYNC, headers={"Authorization": f"Bearer {wrong}"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert wrong not in answer.text and wrong not in caplog.text
    assert stored(engine) == []


def test_the_right_key_is_accepted_with_any_case_of_the_scheme(client: TestClient):
    assert client.get(SYNC, headers=AUTH).status_code == 200
    assert client.get(SYNC, headers={"Authorization": f"bearer  {API_KEY}"}).status_code == 200


# --- status --------------------------------------------------------------------------------


def test_status_reports_every_active_account_and_entity(client: TestClient, engine: Engine):
    seed_status(
        engine, "api-demo", "suppliers", full=timedelta(minutes=12, seconds=5),
        partial=timedelta(minutes=1),
    )  # fmt: skip
    seed_status(engine, "api-demo", "ingredients", full=timedelta(hours=25))
    seed_status(
        engine, "api-demo", "workshops", full=timedelta(hours=30),
        attempt=timedelta(minutes=2), full_error="Poster error 11: invalid token",
    )  # fmt: skip

    answer = client.get(SYNC, headers=AUTH)

    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True and body["windowHours"] == 24
    assert list(body["accounts"]) == list(ACTIVE)
    for report in body["accounts"].values():
        assert list(report) == ALL_ENTITIES
    demo = body["accounts"]["api-demo"]
    fresh = demo["suppliers"]
    assert fresh["lastSyncAt"].endswith("Z") and fresh["lastPartialSyncAt"].endswith("Z")
    assert datetime.fromisoformat(fresh["lastSyncAt"]) < datetime.fromisoformat(
        fresh["lastPartialSyncAt"]
    )
    assert (fresh["age"], fresh["needsSync"]) == (12, False)
    assert (fresh["lastSyncSuccess"], fresh["lastError"]) == (True, None)
    assert (demo["ingredients"]["age"], demo["ingredients"]["needsSync"]) == (25 * 60, True)
    # Stale but a full sync failed 2 min ago: smart sync backs off, and so does needsSync.
    assert demo["workshops"] == {
        "lastSyncAt": demo["workshops"]["lastSyncAt"],
        "lastPartialSyncAt": None,
        "needsSync": False,
        "age": 30 * 60,
        "lastSyncSuccess": False,
        "lastError": "Poster error 11: invalid token",
        "lastFullError": {
            "message": "Poster error 11: invalid token",
            "at": demo["workshops"]["lastFullError"]["at"],
        },
        "lastPartialError": None,
    }
    failed_at = datetime.fromisoformat(demo["workshops"]["lastFullError"]["at"])
    assert timedelta(minutes=1) < datetime.now(UTC) - failed_at < timedelta(minutes=3)
    never = {
        "lastSyncAt": None,
        "lastPartialSyncAt": None,
        "needsSync": True,
        "age": None,
        "lastSyncSuccess": None,
        "lastError": None,
        "lastFullError": None,
        "lastPartialError": None,
    }
    assert body["accounts"]["second-cafe"]["products"] == never
    assert demo["products"] == never


def record(engine: Engine, outcome: str, kind: SyncKind, minutes_ago: int) -> datetime:
    """A sync of api-demo's ingredients through the status writes the syncs use; returns
    when it started."""
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)
    if outcome == "failed":
        message = f"{kind} sync of ingredients failed: HTTP 503"
        record_failure(engine, "ingredients", "api-demo", message, now=started, kind=kind)
    else:
        with engine.begin() as conn:
            record_success(
                conn, "ingredients", "api-demo", kind, now=started, active=1, total=1, run_id=None
            )
    return started


def ingredients_status(client: TestClient) -> dict[str, Any]:
    answer = client.get(SYNC, headers=AUTH)
    assert answer.status_code == 200
    report = answer.json()["accounts"]["api-demo"]["ingredients"]
    return {key: report[key] for key in ERROR_FIELDS}


ERROR_FIELDS = ("lastSyncSuccess", "lastError", "lastFullError", "lastPartialError")
ALL_CLEAR = {
    "lastSyncSuccess": True,
    "lastError": None,
    "lastFullError": None,
    "lastPartialError": None,
}


def test_a_failed_partial_sync_clears_when_a_partial_sync_next_works(
    client: TestClient, engine: Engine
):
    record(engine, "succeeded", "full", 60)
    failed_at = record(engine, "failed", "partial", 30)
    assert ingredients_status(client) == {
        "lastSyncSuccess": False,
        "lastError": "partial sync of ingredients failed: HTTP 503",
        "lastFullError": None,
        "lastPartialError": {
            "message": "partial sync of ingredients failed: HTTP 503",
            "at": iso(failed_at),
        },
    }
    record(engine, "succeeded", "partial", 20)
    assert ingredients_status(client) == ALL_CLEAR


def test_a_failed_full_sync_stands_through_successful_partial_syncs(
    client: TestClient, engine: Engine
):
    record(engine, "succeeded", "full", 60)
    failed_at = record(engine, "failed", "full", 30)
    record(engine, "succeeded", "partial", 20)
    record(engine, "succeeded", "partial", 10)
    full_error = {"message": "full sync of ingredients failed: HTTP 503", "at": iso(failed_at)}
    assert ingredients_status(client) == {
        "lastSyncSuccess": False,
        "lastError": "full sync of ingredients failed: HTTP 503",
        "lastFullError": full_error,
        "lastPartialError": None,
    }
    # A partial failure on top: lastError is the newer one, both are listed.
    partial_at = record(engine, "failed", "partial", 5)
    status = ingredients_status(client)
    assert status["lastError"] == "partial sync of ingredients failed: HTTP 503"
    assert status["lastFullError"] == full_error
    assert status["lastPartialError"]["at"] == iso(partial_at)


def test_a_successful_full_sync_clears_a_failed_partial_sync(client: TestClient, engine: Engine):
    record(engine, "failed", "partial", 30)
    record(engine, "succeeded", "full", 20)
    assert ingredients_status(client) == ALL_CLEAR


def test_the_errors_read_the_same_from_the_embedded_sqlite_warehouse(tmp_path):
    sqlite = fresh_engine("sqlite", tmp_path)
    now = datetime.now(UTC)
    with sqlite.begin() as conn:
        conn.execute(
            sa.insert(accounts).values(
                account="api-demo",
                token_encrypted="not-a-token",
                auth_method="personal",
                connected_at=now,
                updated_at=now,
            )
        )
    record(sqlite, "succeeded", "full", 60)
    failed_at = record(sqlite, "failed", "full", 30)
    record(sqlite, "failed", "partial", 20)
    record(sqlite, "succeeded", "partial", 10)
    with app_client(sqlite) as client:
        assert ingredients_status(client) == {
            "lastSyncSuccess": False,
            "lastError": "full sync of ingredients failed: HTTP 503",
            "lastFullError": {
                "message": "full sync of ingredients failed: HTTP 503",
                "at": iso(failed_at),
            },
            "lastPartialError": None,
        }
    sqlite.dispose()


def test_the_window_is_the_configured_one(engine: Engine):
    seed_status(engine, "api-demo", "suppliers", full=timedelta(hours=3))
    with app_client(engine, smart_sync_window_hours=2.5) as client:
        body = client.get(SYNC, headers=AUTH).json()
    assert body["windowHours"] == 2.5
    assert body["accounts"]["api-demo"]["suppliers"]["needsSync"] is True


# --- one account, the seed's shape ---------------------------------------------------------


def test_one_account_answers_the_seeds_shape(client: TestClient, engine: Engine):
    seed_status(engine, "api-demo", "suppliers", full=timedelta(minutes=12, seconds=5))
    seed_status(engine, "api-demo", "ingredients", full=timedelta(hours=25))
    seed_status(engine, "second-cafe", "ingredients", full=timedelta(minutes=3))

    answer = client.get(SYNC, params={"account": "api-demo"}, headers=AUTH)

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"success", "account", "windowHours", "status"}
    assert (body["success"], body["account"], body["windowHours"]) == (True, "api-demo", 24)
    status = body["status"]
    assert list(status) == ALL_ENTITIES
    # What a client written for the seed reads: status.<entity>.lastSyncAt and .needsSync.
    assert status["suppliers"]["lastSyncAt"].endswith("Z")
    assert status["suppliers"]["needsSync"] is False
    assert (status["ingredients"]["age"], status["ingredients"]["needsSync"]) == (25 * 60, True)
    assert status["products"]["lastSyncAt"] is None and status["products"]["needsSync"] is True
    # The same per-entity report as the all-accounts form, and only this account's.
    everything = client.get(SYNC, headers=AUTH).json()
    assert status == everything["accounts"]["api-demo"]
    other = client.get(SYNC, params={"account": "second-cafe"}, headers=AUTH).json()["status"]
    assert other == everything["accounts"]["second-cafe"]
    assert other["ingredients"]["age"] == 3 and other["suppliers"]["lastSyncAt"] is None


@pytest.mark.parametrize("name", ["no-such-cafe", INACTIVE])
def test_an_unknown_or_inactive_account_is_404_naming_the_active_ones(
    client: TestClient, engine: Engine, name: str
):
    answer = client.get(SYNC, params={"account": name}, headers=AUTH)
    assert answer.status_code == 404
    assert answer.json() == {
        "success": False,
        "error": f"unknown or inactive account {name!r}; active accounts: api-demo, second-cafe",
        "validAccounts": list(ACTIVE),
    }
    assert stored(engine) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("account=", "the account parameter is empty: ?account=NAME"),
        ("account=%20", "the account parameter is empty: ?account=NAME"),
        (
            "account=api-demo&account=second-cafe",
            "give one account: ?account=NAME (omit it for every account)",
        ),
    ],
)
def test_an_empty_or_repeated_account_parameter_is_400(
    client: TestClient, query: str, message: str
):
    answer = client.get(f"{SYNC}?{query}", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json() == {"success": False, "error": message}


def test_one_account_without_an_api_key_is_503(engine: Engine):
    with app_client(engine, api_key=None) as client:
        answer = client.get(SYNC, params={"account": "api-demo"}, headers=AUTH)
    assert answer.status_code == 503
    assert answer.json()["error"] == "sync API disabled: set POSTER_API_KEY"


# --- smart and forced syncs ----------------------------------------------------------------


def test_smart_sync_queues_only_what_needs_a_sync(client: TestClient, engine: Engine):
    seed_status(engine, "api-demo", "suppliers", full=timedelta(minutes=12))
    seed_status(engine, "api-demo", "ingredients", full=timedelta(hours=25))
    seed_status(
        engine, "api-demo", "workshops", full=timedelta(hours=30),
        attempt=timedelta(minutes=2), full_error="boom",
    )  # fmt: skip

    answer = post(client)  # no body: every entity of every active account, smart

    assert answer.status_code == 202
    body = answer.json()
    assert body["success"] is True
    everything = {(a, e) for a in ACTIVE for e in ALL_ENTITIES}
    assert pairs(body["skipped"]) == {("api-demo", "suppliers"), ("api-demo", "workshops")}
    assert pairs(body["queued"]) == everything - pairs(body["skipped"])
    assert all(item["force"] is False for item in body["queued"])
    assert reason(answer, "api-demo", "suppliers") == "fresh: last full sync 12 min ago"
    assert reason(answer, "api-demo", "workshops").startswith(
        "backing off: the last full sync failed 2 min ago; smart sync retries in 13 min"
    )
    assert {(a, e) for a, e, force, status in stored(engine)} == pairs(body["queued"])
    assert {(force, status) for *_, force, status in stored(engine)} == {(False, "pending")}
    # Queued in the catalogue's order, account by account.
    assert [(q["account"], q["entity"]) for q in body["queued"]][:3] == [
        ("api-demo", "ingredients"),
        ("api-demo", "ingredient_categories"),
        ("api-demo", "product_categories"),
    ]


def test_a_sync_already_queued_is_not_queued_twice(client: TestClient, engine: Engine):
    first = post(client, {"entities": ["products"]})
    second = post(client, {"entities": ["products"]})
    forced = post(client, {"entities": ["products"], "force": True})

    assert len(first.json()["queued"]) == 2
    for answer in (second, forced):
        assert answer.status_code == 202 and answer.json()["queued"] == []
        assert {s["reason"] for s in answer.json()["skipped"]} == {"already queued"}
    assert len(stored(engine)) == 2


def test_a_launched_request_counts_until_its_sync_is_attempted(client: TestClient, engine: Engine):
    body = {"entities": ["storages"], "accounts": ["api-demo"]}
    post(client, body)
    with engine.connect() as conn:
        [request_id] = conn.execute(sa.select(sync_requests.c.id)).scalars()
    mark_launched(engine, {request_id: "sync-request:test"}, now=datetime.now(UTC))

    answer = post(client, body)
    assert answer.json()["queued"] == []
    assert reason(answer, "api-demo", "storages").endswith("its sync has not finished yet")

    seed_status(engine, "api-demo", "storages", full=timedelta(0))  # the run has synced
    assert reason(post(client, body), "api-demo", "storages").startswith("fresh: ")


def test_force_queues_every_selected_sync_even_fresh_ones(client: TestClient, engine: Engine):
    seed_status(engine, "api-demo", "suppliers", full=timedelta(minutes=1))

    answer = post(
        client, {"entities": ["suppliers", "ingredients"], "accounts": ["api-demo"], "force": True}
    )

    assert answer.status_code == 202
    assert answer.json()["queued"] == [
        {"account": "api-demo", "entity": "suppliers", "force": True},
        {"account": "api-demo", "entity": "ingredients", "force": True},
    ]
    assert answer.json()["skipped"] == []
    assert stored(engine) == [
        ("api-demo", "suppliers", True, "pending"),
        ("api-demo", "ingredients", True, "pending"),
    ]


def test_nothing_to_do_is_still_202(client: TestClient, engine: Engine):
    for entity in ALL_ENTITIES:
        for account in ACTIVE:
            seed_status(engine, account, entity, full=timedelta(hours=1))
    answer = post(client)
    assert answer.status_code == 202
    skipped = answer.json()["skipped"]
    assert answer.json()["queued"] == [] and len(skipped) == len(ALL_ENTITIES) * len(ACTIVE)


# --- rate limit ----------------------------------------------------------------------------


def test_a_second_forced_sync_within_the_interval_is_429(client: TestClient, engine: Engine):
    body = {"entities": ["suppliers"], "accounts": ["api-demo"], "force": True}
    assert post(client, body).status_code == 202

    answer = post(client, body)

    assert answer.status_code == 429
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    payload = answer.json()
    assert payload["success"] is False and payload["queued"] == []
    assert "at most one forced sync per 60 s" in payload["error"]
    [skipped] = payload["skipped"]
    assert skipped["reason"].startswith("rate limited: forced 0 s ago, retry in ")
    assert skipped["retryAfter"] == int(answer.headers["retry-after"])
    assert len(stored(engine)) == 1


def test_partly_rate_limited_queues_the_rest(client: TestClient, engine: Engine):
    post(client, {"entities": ["suppliers"], "accounts": ["api-demo"], "force": True})

    answer = post(client, {"entities": ["suppliers", "ingredients"], "force": True})

    assert answer.status_code == 202
    assert pairs(answer.json()["queued"]) == {
        ("second-cafe", "suppliers"),
        ("api-demo", "ingredients"),
        ("second-cafe", "ingredients"),
    }
    assert reason(answer, "api-demo", "suppliers").startswith("rate limited: forced")


def test_the_limit_ends_after_the_interval(client: TestClient, engine: Engine):
    body = {"entities": ["suppliers"], "accounts": ["api-demo"], "force": True}
    post(client, body)
    with engine.begin() as conn:  # the sensor launched it, 61 s ago
        conn.execute(
            sa.update(sync_requests).values(
                status="launched", requested_at=datetime.now(UTC) - timedelta(seconds=61)
            )
        )
    assert post(client, body).status_code == 202
    assert len(stored(engine)) == 2


def test_the_interval_is_configurable(engine: Engine):
    body = {"entities": ["suppliers"], "accounts": ["api-demo"], "force": True}
    with app_client(engine, force_interval_seconds=3600) as client:
        post(client, body)
        with engine.begin() as conn:
            conn.execute(
                sa.update(sync_requests).values(
                    status="launched", requested_at=datetime.now(UTC) - timedelta(minutes=30)
                )
            )
        answer = post(client, body)
    assert answer.status_code == 429
    assert 1790 <= int(answer.headers["retry-after"]) <= 1800
    assert "forced 30 min ago" in answer.json()["skipped"][0]["reason"]


def test_the_limit_holds_across_workers(engine: Engine):
    """Two apps (as two worker processes: separate locks, separate pools) racing."""
    body = {"entities": ["suppliers"], "accounts": ["api-demo"], "force": True}
    with app_client(engine) as one, app_client(engine) as two, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: post(c, body), [one, two] * 4))
    assert sorted(a.status_code for a in answers) == [202] + [429] * 7
    assert stored(engine) == [("api-demo", "suppliers", True, "pending")]


# --- validation ----------------------------------------------------------------------------


def test_an_unknown_entity_is_422_naming_the_valid_ones(client: TestClient, engine: Engine):
    answer = post(client, {"entities": ["suppliers", "dishes"]})
    assert answer.status_code == 422
    body = answer.json()
    assert body["success"] is False
    assert body["error"] == "unknown entity 'dishes'; valid entities: " + ", ".join(ALL_ENTITIES)
    assert body["validEntities"] == ALL_ENTITIES
    assert stored(engine) == []


@pytest.mark.parametrize("name", ["no-such-cafe", INACTIVE])
def test_an_unknown_or_inactive_account_is_422_naming_the_active_ones(
    client: TestClient, name: str
):
    answer = post(client, {"accounts": ["api-demo", name], "force": True})
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == (
        f"unknown or inactive account {name!r}; active accounts: api-demo, second-cafe"
    )
    assert body["validAccounts"] == list(ACTIVE)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"[]", 422, "the body must be a JSON object"),
        (b'{"force": "yes"}', 422, "field 'force' must be true or false"),
        (b'{"entities": "suppliers"}', 422, "field 'entities' must be a list of strings"),
        (b'{"entities": []}', 422, "field 'entities' is empty"),
        (b'{"entity": ["suppliers"]}', 422, "unknown field 'entity'"),
    ],
)
def test_a_malformed_body_is_refused(
    client: TestClient, engine: Engine, body: bytes, status: int, message: str
):
    answer = client.post(SYNC, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == status
    assert answer.json()["success"] is False and message in answer.json()["error"]
    assert stored(engine) == []


def test_media_types(client: TestClient, engine: Engine):
    body = b'{"entities": ["suppliers"], "accounts": ["api-demo"]}'
    plain = client.post(SYNC, content=body, headers={**AUTH, "Content-Type": "text/plain"})
    assert plain.status_code == 415
    # No Content-Type at all is read as JSON, as the webhook endpoint does.
    bare = b'{"entities": ["workshops"], "accounts": ["api-demo"]}'
    assert client.post(SYNC, content=bare, headers=AUTH).status_code == 202
    # `curl -d` without -H sends JSON labelled as a form: read as JSON.
    curl = client.post(
        SYNC, content=body, headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert curl.status_code == 202 and len(curl.json()["queued"]) == 1
    charset = client.post(
        SYNC,
        content=b'{"entities": ["storages"]}',
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 202


# --- aliases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "entity"),
    [
        ("/api/poster/sync-suppliers", "suppliers"),
        ("/api/sync-ingredients", "ingredients"),
        ("/api/sync-sections", "workshops"),
    ],
)
def test_the_seed_routes_are_aliases_with_the_entity_fixed(
    client: TestClient, engine: Engine, path: str, entity: str
):
    answer = post(client, {"force": True}, path=path)
    assert answer.status_code == 202
    assert answer.json()["queued"] == [
        {"account": account, "entity": entity, "force": True} for account in ACTIVE
    ]
    again = post(client, {"force": True, "accounts": ["api-demo"]}, path=path)
    assert again.status_code == 429  # the same rate limit as /api/poster/sync

    refused = post(client, {"entities": ["products"]}, path=path)
    assert refused.status_code == 422
    assert refused.json()["error"] == (
        f"this route syncs {entity} only; POST /api/poster/sync to choose entities"
    )
    assert client.get(path, headers=AUTH).status_code == 405
    assert post(client, path=path).status_code == 202  # no body: smart, every account


# --- the warehouse down --------------------------------------------------------------------


def test_a_warehouse_that_is_down_is_503_quickly():
    down = receiver_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", pool_size=1, timeout=1
    )
    with app_client(down, database_timeout_seconds=2) as client:
        for answer in (
            client.get(SYNC, headers=AUTH),
            client.get(SYNC, params={"account": "api-demo"}, headers=AUTH),
            post(client, {"force": True}),
        ):
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "5"
            assert answer.json() == {
                "success": False,
                "error": "the warehouse is unavailable; retry shortly",
            }
    down.dispose()


# --- the tables ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migration_0005_creates_the_declared_tables_and_walks_back(backend: str, tmp_path):
    engine = fresh_engine(backend, tmp_path, "_api_migration")
    mine = {sync_requests.name, oauth_states.name}
    options = {
        "compare_type": True,
        "version_table": VERSION_TABLE,
        # Only these two tables: others belong to other modules and their own tests.
        "include_name": lambda name, kind, parents: kind != "table" or name in mine,
        "include_object": lambda obj, name, kind, *_: kind != "table" or name in mine,
    }

    def drift() -> list:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts=options), metadata)

    assert {metadata.tables[name] for name in mine} == {sync_requests, oauth_states}
    assert drift() == []
    downgrade(engine, "0004")
    assert not mine & set(sa.inspect(engine).get_table_names())
    upgrade(engine)
    assert mine <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


# --- the planning rules, without a server --------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = SyncPolicy(window=timedelta(hours=24), force_interval=timedelta(seconds=60))


def plan(force: bool, state: SyncState | None = None, seen: RequestHistory | None = None):
    selection = SyncSelection(accounts=("cafe",), entities=("suppliers",), force=force)
    states = {("cafe", "suppliers"): state} if state else {}
    history = {("cafe", "suppliers"): seen} if seen else {}
    return plan_sync(selection, states, history, now=NOW, policy=POLICY)


def test_plan_never_synced_is_queued_smart_and_forced():
    assert len(plan(False).queued) == 1 and len(plan(True).queued) == 1


def test_plan_a_launched_request_is_trusted_for_the_back_off_only():
    recent = RequestHistory(last_launched_at=NOW - timedelta(minutes=14))
    old = RequestHistory(last_launched_at=NOW - timedelta(minutes=16))
    assert plan(False, seen=recent).skipped[0].reason == (
        "already requested 14 min ago; its sync has not finished yet"
    )
    assert len(plan(False, seen=old).queued) == 1
    assert len(plan(True, seen=recent).queued) == 1  # force does not wait for it


def test_plan_rate_limit_and_retry_after():
    seen = RequestHistory(last_forced_at=NOW - timedelta(seconds=20.5))
    result = plan(True, seen=seen)
    assert result.rate_limited and result.retry_after == 40
    assert result.skipped[0].reason == "rate limited: forced 20 s ago, retry in 40 s"
    assert not plan(False, seen=seen).rate_limited  # smart requests are not rate limited
    assert len(plan(True, seen=RequestHistory(last_forced_at=NOW - timedelta(seconds=60))).queued)


def test_plan_fresh_and_backing_off_reasons():
    fresh = SyncState(last_full_sync_at=NOW - timedelta(hours=3), last_full_attempt_at=NOW)
    assert plan(False, fresh).skipped[0].reason == "fresh: last full sync 3 h ago"
    failing = SyncState(
        last_full_sync_at=NOW - timedelta(days=3), last_full_attempt_at=NOW - timedelta(minutes=5)
    )
    assert plan(False, failing).skipped[0].reason == (
        "backing off: the last full sync failed 5 min ago; smart sync retries in 10 min "
        "(force to retry now)"
    )
