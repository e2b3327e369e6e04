"""OAuth connect end to end against the emulator (tests/conftest.py's, application
``test-app``): authorize → Poster's approval → callback → an encrypted token that works; and
every way the callback refuses (replayed, expired, forged or missing state, a refused code,
Poster unreachable, missing configuration)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import dagster as dg
import httpx
import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine

from poster_pipeline.emulator import RunningEmulator
from poster_pipeline.http import ReceiverConfigError, ReceiverSettings, create_app
from poster_pipeline.http.database import receiver_engine
from poster_pipeline.http.oauth_routes import STATE_COOKIE
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import WarehouseResource
from poster_pipeline.poster.client import PosterClient
from poster_pipeline.warehouse.accounts import AccountStore, TokenCipher
from poster_pipeline.warehouse.oauth_states import oauth_states
from poster_pipeline.warehouse.schema import accounts
from sensors.accounts import account_partitions_sensor
from tests.conftest import fast_settings
from tests.databases import fresh_engine
from tests.http.conftest import TestClient

AUTHORIZE = "/api/poster/oauth/authorize"
CALLBACK = "/api/poster/oauth/callback"
REDIRECT = "http://testserver" + CALLBACK
APPLICATION_ID = "test-app"  # the emulator fixture's application
SECRET = "test-secret"
TOKEN_KEY = Fernet.generate_key().decode()
EXPIRED = "This link was already used or has expired; start again."


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = fresh_engine("postgresql", tmp_path_factory.mktemp("oauth"), "_oauth")
    yield engine
    engine.dispose()


@pytest.fixture
def engine(warehouse: Engine) -> Engine:
    with warehouse.begin() as conn:
        conn.execute(sa.delete(oauth_states))
        conn.execute(sa.delete(accounts))
    return warehouse


def settings(emulator: RunningEmulator, tmp_path: Path, **overrides: Any) -> ReceiverSettings:
    values: dict[str, Any] = {
        "application_secret": SECRET,
        "application_id": APPLICATION_ID,
        "redirect_uri": REDIRECT,
        "api_url": emulator.api_url,
        "token_key": TOKEN_KEY,
        "data_dir": tmp_path,
        **overrides,
    }
    return ReceiverSettings(**values)


@pytest.fixture
def make_client(emulator: RunningEmulator, engine: Engine, tmp_path: Path) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(settings(emulator, tmp_path, **overrides), engine))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any) -> TestClient:
    return make_client()


def start(client: TestClient) -> str:
    """``GET /authorize``; returns where it sends the browser (Poster's authorize page)."""
    answer = client.get(AUTHORIZE, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def approve(poster_url: str, account: str) -> str:
    """The restaurant approves on Poster (the emulator's page takes ``account``); returns
    the callback URL Poster redirects to."""
    answer = requests.get(f"{poster_url}&account={account}", allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return location


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def accounts_of(engine: Engine) -> AccountStore:
    return AccountStore(engine, TokenCipher(TOKEN_KEY))


def assert_page(answer: httpx.Response, status: int, *texts: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    for text in texts:
        assert text in answer.text


# --- the round trip ------------------------------------------------------------------------


def test_connect_round_trip(client: TestClient, engine: Engine, emulator: RunningEmulator):
    poster_url = start(client)

    assert poster_url.startswith(f"{emulator.api_url}/auth?")
    params = query(poster_url)
    assert params["application_id"] == APPLICATION_ID
    assert params["redirect_uri"] == REDIRECT
    assert params["response_type"] == "code"
    state = params["state"]
    with engine.connect() as conn:
        [row] = conn.execute(sa.select(oauth_states)).all()
    assert row.state_hash == hashlib.sha256(state.encode()).hexdigest()
    assert row.used_at is None
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10)

    callback = approve(poster_url, "second-cafe")
    code = query(callback)["code"]
    answer = client.get(callback)

    assert_page(answer, 200, "Connected second-cafe: the first full sync starts within a minute.")
    for secret in (code, SECRET, state):
        assert secret not in answer.text
    stored = accounts_of(engine).get("second-cafe")
    expected = next(a for a in emulator.config.accounts if a.name == "second-cafe")
    assert (stored.auth_method, stored.account_number, stored.is_active) == (
        "oauth",
        str(expected.number),
        True,
    )
    token = accounts_of(engine).token("second-cafe")
    with engine.connect() as conn:
        encrypted = conn.execute(sa.select(accounts.c.token_encrypted)).scalar_one()
    assert token not in encrypted
    with PosterClient(
        token, account="second-cafe", settings=fast_settings(emulator.api_url)
    ) as poster:
        assert poster.get_suppliers()  # the token works against Poster (the emulator)


def test_a_connected_account_gets_the_new_token_and_is_reactivated(
    client: TestClient, engine: Engine, emulator: RunningEmulator
):
    old = accounts_of(engine)
    old.add("api-demo", "813932:" + "0" * 32, now=datetime.now(UTC))
    old.deactivate("api-demo", now=datetime.now(UTC))

    answer = client.get(approve(start(client), "api-demo"))

    assert_page(answer, 200, "Connected api-demo")
    account = old.get("api-demo")
    assert (account.is_active, account.auth_method, account.account_number) == (
        True,
        "oauth",
        "813932",
    )
    assert old.token("api-demo") != "813932:" + "0" * 32


def test_the_new_account_gets_its_partition(client: TestClient, engine: Engine, tmp_path):
    """The rest follows by itself: the account sensor picks the account up."""
    client.get(approve(start(client), "second-cafe"))
    warehouse = WarehouseResource(
        database_url=engine.url.render_as_string(hide_password=False),
        data_dir=str(tmp_path),
        token_key=TOKEN_KEY,
    )
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    result = account_partitions_sensor(context)
    assert isinstance(result, dg.SensorResult)
    [request] = result.dynamic_partitions_requests
    assert (request.partitions_def_name, list(request.partition_keys)) == (
        ACCOUNTS,
        ["second-cafe"],
    )


def test_the_state_cookie_stands_in_for_a_state_poster_does_not_return(
    client: TestClient, engine: Engine, make_client: Any
):
    answer = client.get(AUTHORIZE, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert f"{STATE_COOKIE}=" in cookie
    for attribute in ("HttpOnly", "Path=/api/poster/oauth", "SameSite=lax", "Max-Age=600"):
        assert attribute.lower() in cookie.lower()
    callback = approve(answer.headers["location"], "second-cafe")
    params = query(callback)
    without_state = f"{REDIRECT}?{urlencode({'code': params['code'], 'account': 'second-cafe'})}"

    # Another browser, without the cookie, cannot use such a link.
    assert_page(make_client().get(without_state), 400, "The link carries no state")
    connected = client.get(without_state)
    assert_page(connected, 200, "Connected second-cafe")
    assert f'{STATE_COOKIE}=""' in connected.headers["set-cookie"]  # spent, so removed


# --- refusals ------------------------------------------------------------------------------


def test_a_replayed_callback_is_refused(client: TestClient, engine: Engine):
    callback = approve(start(client), "second-cafe")
    assert client.get(callback).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(oauth_states.c.used_at)).scalar_one() is not None

    replay = client.get(callback)

    assert_page(replay, 400, EXPIRED, f'href="{AUTHORIZE}"')


def test_an_expired_state_is_refused(client: TestClient, engine: Engine):
    callback = approve(start(client), "second-cafe")
    with engine.begin() as conn:
        conn.execute(sa.update(oauth_states).values(expires_at=datetime.now(UTC)))

    assert_page(client.get(callback), 400, EXPIRED)
    assert accounts_of(engine).list() == []


def test_a_forged_state_is_refused(client: TestClient, engine: Engine):
    callback = approve(start(client), "second-cafe")
    forged = callback.replace(query(callback)["state"], "forged-state")
    assert_page(client.get(forged), 400, EXPIRED)
    assert accounts_of(engine).list() == []


def test_a_refused_code_shows_posters_message_and_no_secret(
    make_client: Any, engine: Engine, caplog: pytest.LogCaptureFixture
):
    wrong_secret = "not-the-application-secret"
    client = make_client(application_secret=wrong_secret)
    callback = approve(start(client), "second-cafe")
    code = query(callback)["code"]

    with caplog.at_level(logging.INFO):
        answer = client.get(callback)

    assert_page(
        answer, 400, "Poster refused the authorization", "doesn&#x27;t exist", "Start again"
    )
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("poster_"))
    assert "Requested code's application doesn't exist" in ours
    for secret in (wrong_secret, code):
        assert secret not in answer.text and secret not in ours
    assert accounts_of(engine).list() == []


def test_poster_unreachable_is_502(make_client: Any, engine: Engine):
    client = make_client(api_url="http://127.0.0.1:1/api")  # nothing listens on port 1
    state = query(start(client))["state"]
    answer = client.get(CALLBACK, params={"code": "c" * 32, "account": "cafe", "state": state})
    assert_page(answer, 502, "Poster is unreachable", "Try again in a few minutes")
    assert "c" * 32 not in answer.text


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"account": "cafe", "state": "s"}, "The link lacks code"),
        ({"code": "c", "state": "s"}, "The link lacks account"),
        ({}, "The link lacks code and account"),
        ({"code": "c", "account": "no_such login!", "state": "s"}, "no valid Poster account"),
    ],
)
def test_missing_or_bad_parameters_are_400(client: TestClient, params: dict, text: str):
    assert_page(client.get(CALLBACK, params=params), 400, text)


def test_without_the_application_settings_the_routes_say_what_to_set(make_client: Any):
    client = make_client(application_id=None, redirect_uri=None)
    for path in (AUTHORIZE, CALLBACK):
        answer = client.get(path, follow_redirects=False)
        assert_page(answer, 503, "POSTER_APPLICATION_ID, POSTER_REDIRECT_URI")


def test_a_warehouse_that_is_down_is_a_503_page(emulator: RunningEmulator, tmp_path: Path):
    down = receiver_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", pool_size=1, timeout=1
    )
    with TestClient(create_app(settings(emulator, tmp_path), down)) as client:
        assert_page(client.get(AUTHORIZE, follow_redirects=False), 503, "Try again in a minute")
    down.dispose()


def test_an_invalid_token_key_stops_the_app_at_once(emulator: RunningEmulator, tmp_path):
    with pytest.raises(ReceiverConfigError, match="not a Fernet key"):
        create_app(
            settings(emulator, tmp_path, token_key="not-a-key"), sa.create_engine("sqlite://")
        )
