"""The webhook receiver end to end over HTTP: every answer it gives, and what it stored.

The contract (docs/design.md "Webhook queue rules", docs/reliability.md §1.5, §3.3): 200 only
once the hook is committed, a duplicate stored once, business problems stored as ignored and
answered 200, a malformed request or bad signature refused with a 4xx and nothing stored, never
a 500, and 503 quickly while the warehouse is down, recovering without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from poster_pipeline.http import ReceiverConfigError, ReceiverSettings, create_app
from poster_pipeline.http.database import receiver_engine
from poster_pipeline.warehouse.schema import accounts
from tests.databases import postgres_url
from tests.http.conftest import HTTP_DATABASE_SUFFIX, MakeClient, TestClient
from tests.http.deliveries import (
    ACCOUNT,
    INACTIVE_ACCOUNT,
    SECRET,
    WEBHOOKS,
    hook,
    stored,
    wait_for,
)
from tests.http.tcp_proxy import running_proxy

ACCEPT = {"status": "accept"}
LIMIT = 65536


def post_json(client: TestClient, body: Any, **headers: str) -> httpx.Response:
    return client.post(
        WEBHOOKS,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )


def post_bytes(client: TestClient, body: bytes, content_type: str | None = "application/json"):
    headers = {} if content_type is None else {"content-type": content_type}
    return client.post(WEBHOOKS, content=body, headers=headers)


# --- accepted deliveries -------------------------------------------------------------------


def test_a_signed_delivery_is_answered_after_it_is_queued(any_engine: Engine, make_client):
    client = make_client(any_engine)
    delivery = hook(object="dish", object_id=77, action="added")

    answer = post_json(client, delivery)

    assert (answer.status_code, answer.json()) == (200, ACCEPT)
    [row] = stored(any_engine)
    assert (row.account, row.object, row.object_id, row.action) == (ACCOUNT, "dish", 77, "added")
    assert (row.entity, row.status, row.ignore_reason) == ("products", "pending", None)
    assert row.event_time == int(delivery["time"]) and row.account_number == "813932"
    assert row.payload == delivery


def test_a_redelivery_is_answered_200_and_stored_once(any_engine: Engine, make_client):
    client = make_client(any_engine)
    delivery = hook()
    assert [post_json(client, delivery).status_code for _ in range(3)] == [200, 200, 200]
    assert len(stored(any_engine)) == 1


def test_a_change_at_another_time_is_another_event(client: TestClient, engine: Engine):
    post_json(client, hook(object_id=5, time="1700000000"))
    post_json(client, hook(object_id=5, time="1700000001"))
    assert [row.event_time for row in stored(engine)] == [1700000000, 1700000001]


def test_data_is_verified_as_the_exact_string_sent(client: TestClient, engine: Engine):
    data = '{"type": 1, "element_id": 91, "value_absolute": 7, "comment": "Сырники"}'
    answer = post_json(client, hook(object="ingredient", data=data))
    assert answer.status_code == 200
    assert stored(engine)[0].payload["data"] == data


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_json_is_accepted_with_a_charset(client: TestClient, content_type: str):
    answer = post_bytes(client, json.dumps(hook()).encode(), content_type)
    assert answer.status_code == 200


def test_a_form_encoded_delivery_is_accepted(client: TestClient, engine: Engine):
    data = '{"value_relative": -2.5, "note": "молоко & сливки"}'
    delivery = hook(object="storage", object_id="3", data=data)
    answer = client.post(WEBHOOKS, data=delivery)
    assert (answer.status_code, answer.json()) == (200, ACCEPT)
    [row] = stored(engine)
    assert (row.entity, row.object_id, row.payload["data"]) == ("storages", 3, data)


def test_a_multipart_delivery_is_accepted(client: TestClient, engine: Engine):
    delivery = {key: str(value) for key, value in hook(object="workshop").items()}
    answer = client.post(WEBHOOKS, files={key: (None, value) for key, value in delivery.items()})
    assert answer.status_code == 200
    assert stored(engine)[0].entity == "workshops"


def test_a_json_body_labelled_as_a_form_is_read_as_json(client: TestClient, engine: Engine):
    # What PHP's curl sends for a raw string body unless a Content-Type is set.
    body = json.dumps(hook()).encode()
    assert post_bytes(client, body, "application/x-www-form-urlencoded").status_code == 200
    assert len(stored(engine)) == 1


def test_the_url_with_a_trailing_slash_is_not_redirected(client: TestClient, engine: Engine):
    answer = client.post(WEBHOOKS + "/", json=hook(), follow_redirects=False)
    assert answer.status_code == 200
    assert len(stored(engine)) == 1


def test_a_body_of_exactly_the_limit_is_accepted(client: TestClient, engine: Engine):
    delivery = hook()
    size = len(json.dumps(delivery | {"padding": ""}).encode())
    delivery["padding"] = "x" * (LIMIT - size)
    body = json.dumps(delivery).encode()
    assert len(body) == LIMIT
    assert post_bytes(client, body).status_code == 200
    assert len(stored(engine)) == 1


# --- business problems: stored as ignored, answered 200 ------------------------------------


@pytest.mark.parametrize(
    ("fields", "entity", "reason"),
    [
        ({"account": "stranger"}, "ingredients", "account stranger is not connected"),
        (
            {"account": INACTIVE_ACCOUNT},
            "ingredients",
            f"account {INACTIVE_ACCOUNT} is not connected",
        ),
        ({"object": "transaction"}, None, "object transaction is not synced"),
        ({"action": "test"}, "ingredients", "test hook"),
        ({"object": "product", "action": "closed"}, "products", "unknown action closed"),
    ],
)
def test_a_hook_the_pipeline_does_not_sync_is_stored_as_ignored(
    any_engine: Engine, make_client: MakeClient, fields, entity, reason
):
    answer = post_json(make_client(any_engine), hook(**fields))
    assert (answer.status_code, answer.json()) == (200, ACCEPT)
    [row] = stored(any_engine)
    assert (row.status, row.entity, row.ignore_reason) == ("ignored", entity, reason)


def test_a_newly_connected_account_is_recognised_without_waiting_for_the_cache(
    make_client: MakeClient, engine: Engine
):
    client = make_client(engine, accounts_cache_seconds=3600)
    post_json(client, hook(account="new-cafe"))
    assert stored(engine)[-1].status == "ignored"
    with engine.begin() as conn:
        conn.execute(
            sa.update(accounts).where(accounts.c.account == INACTIVE_ACCOUNT).values(is_active=True)
        )

    def recognised() -> bool:
        post_json(client, hook(account=INACTIVE_ACCOUNT))
        return stored(engine)[-1].status == "pending"

    # a miss reloads the list once it is a second old, long before the hour is up
    wait_for(recognised, timeout=5, what="the newly activated account is recognised")


# --- refused requests: the status, and nothing stored --------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"x": value}
    return value


def _bad_json_bodies() -> list[tuple[str, bytes, int]]:
    good = json.dumps(hook()).encode()
    return [
        ("not UTF-8", good.replace(b'"api-demo"', b'"api-d\xe9mo"'), 400),
        ("UTF-16", json.dumps(hook()).encode("utf-16"), 400),
        ("a byte-order mark", b"\xef\xbb\xbf" + good, 400),
        ("truncated JSON", good[: len(good) // 2], 400),
        ("an empty body", b"", 400),
        ("not JSON", b"account=api-demo", 400),
        ("NaN", good[:-1] + b', "n": NaN}', 400),
        ("an infinite number", good[:-1] + b', "n": 1e999}', 400),
        ("a 5000-digit integer", good[:-1] + b', "n": ' + b"9" * 5000 + b"}", 400),
        ("arrays 30 000 deep", b"[" * 30000 + b"]" * 30000, 400),
        ("objects 50 deep", json.dumps(hook(extra=_nested(50))).encode(), 400),
        ("a NUL character", json.dumps(hook(account="api\u0000demo")).encode(), 400),
        ("an unpaired surrogate", good[:-1] + b', "n": "\\ud800"}', 400),
        ("a JSON array", json.dumps([hook()]).encode(), 422),
        ("a JSON string", b'"hello"', 422),
        ("a JSON number", b"42", 422),
        ("JSON null", b"null", 422),
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [pytest.param(body, status, id=name) for name, body, status in _bad_json_bodies()],
)
def test_a_body_that_is_not_a_json_object_is_refused(client, engine, body, status):
    answer = post_bytes(client, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["status"] == "error" and answer.json()["error"]
    assert stored(engine) == []


@pytest.mark.parametrize("field", ["account", "object", "object_id", "action", "time", "verify"])
def test_a_missing_field_is_refused_with_its_name(client, engine, field):
    delivery = hook()
    del delivery[field]
    answer = post_json(client, delivery)
    assert answer.status_code == 422
    assert field in answer.json()["error"]
    assert stored(engine) == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"object_id": "12abc"}, "object_id"),
        ({"object_id": 1.5}, "object_id"),
        ({"object_id": True}, "object_id"),
        ({"object_id": [1]}, "object_id"),
        ({"object_id": None}, "object_id"),
        ({"object_id": 2**70}, "object_id"),
        ({"object_id": "9" * 5000}, "object_id"),
        ({"time": "yesterday"}, "time"),
        ({"time": "²"}, "time"),
        ({"time": "9" * 40}, "time"),
        ({"account": {"login": "api-demo"}}, "account"),
        ({"action": ""}, "action"),
        ({"verify": "é" * 32}, "verify"),
    ],
)
def test_an_invalid_field_is_refused_with_its_name(client, engine, fields, named):
    delivery = hook()
    delivery.update(fields)
    answer = post_json(client, delivery)
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["error"]
    assert stored(engine) == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "text/json", "application/jsonx"]
)
def test_a_wrong_content_type_is_refused(client, engine, content_type):
    answer = post_bytes(client, json.dumps(hook()).encode(), content_type)
    assert answer.status_code == 415
    assert stored(engine) == []


@pytest.mark.parametrize("content_type", [None, ""])
def test_a_missing_content_type_is_read_as_json(client, engine, content_type):
    assert post_bytes(client, json.dumps(hook()).encode(), content_type).status_code == 200
    assert len(stored(engine)) == 1
    assert post_bytes(client, b"account=x", content_type).status_code == 400


def test_bad_form_bodies_are_refused(client: TestClient, engine: Engine):
    form = "application/x-www-form-urlencoded"
    assert post_bytes(client, b"account=%FF%FE&object=ingredient", form).status_code == 400
    assert post_bytes(client, b"account=api-d\xe9mo", form).status_code == 400
    assert post_bytes(client, b"account=a%00b", form).status_code == 400
    assert post_bytes(client, b"&".join([b"f=1"] * 100), form).status_code == 400
    assert post_bytes(client, b"account=api-demo", form).status_code == 422
    with_file = {key: (None, str(value)) for key, value in hook().items()}
    with_file["attachment"] = ("hook.json", b"{}")
    assert client.post(WEBHOOKS, files=with_file).status_code == 400
    broken = post_bytes(client, b"--x\r\nnonsense", "multipart/form-data; boundary=x")
    assert broken.status_code in (400, 422)  # python-multipart reads it as an empty form
    assert post_bytes(client, b"whatever", "multipart/form-data").status_code == 400
    assert stored(engine) == []


# --- signatures ----------------------------------------------------------------------------


def test_a_bad_signature_is_refused_and_logged_without_secrets(client, engine, caplog):
    delivery = hook(secret="not-the-secret", object_id=4242, data='{"token": "do-not-log"}')
    with caplog.at_level(logging.WARNING, logger="poster_pipeline.http"):
        answer = post_json(client, delivery)
    assert answer.status_code == 401
    assert stored(engine) == []
    [record] = [r for r in caplog.records if r.name.startswith("poster_pipeline.http")]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert all(part in message for part in ("api-demo", "ingredient", "4242", "changed"))
    for secret in (SECRET, delivery["verify"], "do-not-log"):
        assert secret not in message


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda d: d.update(object_id=d["object_id"] + 1), id="changed object_id"),
        pytest.param(lambda d: d.update(account="other-cafe"), id="changed account"),
        pytest.param(lambda d: d.update(verify="0" * 32), id="zero signature"),
        pytest.param(lambda d: d.update(verify="abc"), id="short signature"),
        pytest.param(lambda d: d.pop("data"), id="data dropped"),
    ],
)
def test_a_tampered_delivery_is_refused(client, engine, tamper):
    delivery = hook(data='{"value": 1}')
    tamper(delivery)
    assert post_json(client, delivery).status_code == 401
    assert stored(engine) == []


def test_a_signature_over_reserialised_data_is_refused(client: TestClient, engine: Engine):
    original = '{"type": 1, "element_id": 91}'  # what Poster signed
    compact = json.dumps(json.loads(original), separators=(",", ":"))
    # a relay re-serialised the data string…
    assert post_json(client, hook(data=original) | {"data": compact}).status_code == 401
    # …or decoded it into an object
    assert (
        post_json(client, hook(data=original) | {"data": json.loads(original)}).status_code == 401
    )
    assert stored(engine) == []


# --- body size -----------------------------------------------------------------------------


def _oversized() -> bytes:
    body = json.dumps(hook(padding="x" * LIMIT)).encode()
    assert len(body) > LIMIT
    return body


def test_an_oversized_body_is_refused(client: TestClient, engine: Engine):
    assert post_bytes(client, _oversized()).status_code == 413
    assert stored(engine) == []


def test_an_oversized_body_with_a_lying_content_length_is_refused(client, engine):
    answer = client.post(
        WEBHOOKS,
        content=_oversized(),
        headers={"content-type": "application/json", "content-length": "100"},
    )
    assert answer.status_code == 413
    assert stored(engine) == []


def test_an_oversized_streamed_body_without_content_length_is_refused(client, engine):
    body = _oversized()

    def chunks():
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    answer = client.post(WEBHOOKS, content=chunks(), headers={"content-type": "application/json"})
    assert answer.request.headers.get("content-length") is None
    assert answer.status_code == 413
    assert stored(engine) == []


def test_a_content_length_over_the_limit_is_refused_before_reading(client, engine):
    answer = client.post(
        WEBHOOKS,
        content=json.dumps(hook()).encode(),
        headers={"content-type": "application/json", "content-length": str(10 * 2**20)},
    )
    assert answer.status_code == 413
    assert stored(engine) == []


def test_the_limit_is_configurable(make_client: MakeClient, engine: Engine):
    client = make_client(engine, max_body_bytes=100)
    assert post_json(client, hook()).status_code == 413


# --- never a 500 ---------------------------------------------------------------------------


def test_mangled_deliveries_get_a_4xx_or_200_never_a_500(client: TestClient, engine: Engine):
    rng = random.Random(20240229)
    base = json.dumps(hook(data='{"k": [1, 2, "три"]}'), ensure_ascii=False).encode()
    statuses = set()
    for _ in range(400):
        body = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            if not body:
                break
            position = rng.randrange(len(body))
            match rng.randrange(4):
                case 0:
                    body[position] = rng.randrange(256)
                case 1:
                    del body[position : position + rng.randint(1, 8)]
                case 2:
                    body[position:position] = rng.choice(
                        [b"{", b"[", b'"', b"\\", b"\x00", b"9" * 30]
                    )
                case _:
                    body = body[:position]
        content_type = rng.choice(["application/json", "application/x-www-form-urlencoded"])
        answer = post_bytes(client, bytes(body), content_type)  # a 500 would raise here
        statuses.add(answer.status_code)
    assert statuses <= {200, 400, 401, 422}
    assert {400, 422} <= statuses


def test_other_routes_and_methods_answer_json(client: TestClient):
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json()["status"]) == (404, "error")
    wrong = client.put(WEBHOOKS)
    assert wrong.status_code == 405
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "POST"}


# --- every accepted delivery is stored -----------------------------------------------------


async def _deliver_concurrently(engine: Engine, deliveries: list[dict[str, Any]]) -> list[int]:
    app = create_app(ReceiverSettings(application_secret=SECRET), engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as http:
        answers = await asyncio.gather(*(http.post(WEBHOOKS, json=d) for d in deliveries))
    return [answer.status_code for answer in answers]


def test_every_accepted_delivery_is_stored_once_under_concurrency(engine: Engine):
    distinct = [hook(object_id=i) for i in range(200)]
    deliveries = distinct + [dict(d) for d in distinct]  # every hook twice, concurrently
    random.Random(1).shuffle(deliveries)

    statuses = asyncio.run(_deliver_concurrently(engine, deliveries))

    assert statuses == [200] * len(deliveries)
    rows = stored(engine)
    assert sorted(row.object_id for row in rows) == list(range(200))


@pytest.fixture
def own_engine(engine: Engine) -> Iterator[Engine]:
    """The engine the receiver builds for itself (the tests' warehouse engine pings)."""
    receiver = receiver_engine(postgres_url(HTTP_DATABASE_SUFFIX), pool_size=4, timeout=3.0)
    yield receiver
    receiver.dispose()


def test_the_hot_path_is_one_statement_that_commits_itself(
    make_client: MakeClient, engine: Engine, own_engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    # One round trip per hook on PostgreSQL: the INSERT alone, in autocommit (so no BEGIN
    # and no COMMIT), prepared, with no ping and no accounts query while the cache is fresh.
    client = make_client(own_engine, accounts_cache_seconds=60)
    post_json(client, hook())  # loads the accounts once
    sent: list[tuple[str, bool, bool | None]] = []
    execute = psycopg.Cursor.execute

    def record(cursor: psycopg.Cursor, query: Any, params: Any = None, **options: Any) -> Any:
        sent.append(
            (str(query).split()[0].upper(), cursor.connection.autocommit, options.get("prepare"))
        )
        return execute(cursor, query, params, **options)

    monkeypatch.setattr(psycopg.Cursor, "execute", record)
    for _ in range(20):
        assert post_json(client, hook()).status_code == 200
    monkeypatch.undo()
    assert sent == [("INSERT", True, True)] * 20
    assert len(stored(engine)) == 21


# --- the warehouse going away --------------------------------------------------------------


@pytest.fixture
def proxied_engine(engine: Engine):
    """A receiver engine that reaches the test PostgreSQL through a proxy the test can cut."""
    url = make_url(postgres_url(HTTP_DATABASE_SUFFIX))
    with running_proxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port)
        proxied = receiver_engine(
            through.render_as_string(hide_password=False), pool_size=4, timeout=1.0
        )
        yield proxy, proxied
        proxied.dispose()


def test_503_while_the_database_is_down_then_200_without_a_restart(
    make_client: MakeClient, engine: Engine, proxied_engine
):
    proxy, proxied = proxied_engine
    client = make_client(proxied, database_timeout_seconds=1.0, database_concurrency=4)
    assert post_json(client, hook()).status_code == 200
    assert client.get("/health/ready").status_code == 200

    proxy.stop()
    during = hook()
    started = time.monotonic()
    refused = post_json(client, during)
    assert time.monotonic() - started < 1.5
    assert (refused.status_code, refused.json()) == (503, {"status": "unavailable"})
    assert int(refused.headers["retry-after"]) > 0
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health/live").status_code == 200

    proxy.start()
    wait_for(lambda: post_json(client, during).status_code == 200, timeout=10, what="recovery")
    assert client.get("/health/ready").status_code == 200
    assert len(stored(engine)) == 2


def test_503_quickly_when_the_database_hangs(
    make_client: MakeClient, engine: Engine, proxied_engine
):
    proxy, proxied = proxied_engine
    client = make_client(proxied, database_timeout_seconds=0.5, database_concurrency=4)
    assert post_json(client, hook()).status_code == 200

    proxy.stop()
    proxy.blackhole()  # connections are accepted and never answered
    started = time.monotonic()
    assert post_json(client, hook()).status_code == 503
    assert time.monotonic() - started < 1.5

    proxy.stop()
    proxy.start()
    wait_for(lambda: post_json(client, hook()).status_code == 200, timeout=10, what="recovery")


def test_after_a_restart_one_hook_meets_the_dead_connection_and_the_next_reconnects(
    make_client: MakeClient, engine: Engine, proxied_engine, caplog
):
    # No ping before each use: the first hook after PostgreSQL came back runs on a pooled
    # connection the outage cut and gets 503 (Poster retries it); the whole pool is dropped
    # then, so the next hook reconnects.
    proxy, proxied = proxied_engine
    # The accounts list stays cached, so the hooks are the only users of the pool.
    client = make_client(proxied, accounts_cache_seconds=60)
    assert [post_json(client, hook()).status_code for _ in range(3)] == [200] * 3
    held = [proxied.connect() for _ in range(3)]  # the pool now keeps 3 connections
    for conn in held:
        conn.close()

    proxy.stop()
    proxy.start()
    with caplog.at_level(logging.INFO, logger="poster_pipeline.http"):
        assert [post_json(client, hook()).status_code for _ in range(3)] == [503, 200, 200]
    assert len(stored(engine)) == 5
    logged = [r.getMessage() for r in caplog.records]
    assert logged[0].startswith("the warehouse is unavailable, answering 503: OperationalError")
    assert logged[-1] == "the warehouse answers again"


# --- health and configuration --------------------------------------------------------------


def test_health_and_status_routes(client: TestClient):
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {"status": "ok"}
    assert client.get(WEBHOOKS).json() == {"status": "ok"}
    assert client.head(WEBHOOKS).status_code == 200


def test_not_ready_without_the_queue_table(make_client: MakeClient, tmp_path):
    unmigrated = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    client = make_client(unmigrated)
    answer = client.get("/health/ready")
    assert answer.status_code == 503
    assert "poster-pipeline db upgrade" in answer.json()["reason"]
    assert post_json(client, hook()).status_code == 503


def test_the_app_refuses_to_start_without_a_secret(monkeypatch, engine: Engine):
    with pytest.raises(ReceiverConfigError, match="POSTER_APPLICATION_SECRET"):
        ReceiverSettings(application_secret="")
    monkeypatch.delenv("POSTER_APPLICATION_SECRET", raising=False)
    with pytest.raises(ReceiverConfigError, match="POSTER_APPLICATION_SECRET"):
        create_app(engine=engine)


def test_the_factory_reads_the_environment(monkeypatch, engine: Engine):
    monkeypatch.setenv("POSTER_APPLICATION_SECRET", SECRET)
    monkeypatch.setenv("POSTER_DATABASE_URL", postgres_url(HTTP_DATABASE_SUFFIX))
    with TestClient(create_app()) as client:
        assert post_json(client, hook()).status_code == 200
    assert len(stored(engine)) == 1


def test_settings_keep_secrets_out_of_repr():
    settings = ReceiverSettings(application_secret="s3cret", warehouse_url="postgresql://u:pw@h/db")
    assert "s3cret" not in repr(settings) and "pw" not in repr(settings)
