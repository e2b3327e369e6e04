"""OAuth connect end to end against the emulator (tests/conftest.py's, application
``test-app``): authorize → Poster's approval → callback → an encrypted token that works; and
every way the callback refuses (replayed, expired, forged or missing state, a state used in
another browser, a code approved by another restaurant, a login or a number that belongs to
another restaurant, an inconsistent token answer, a refused code, Poster unreachable, missing
configuration)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
OTHER_BROWSER = "This connection was started in another browser"


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

    def make(base_url: str = "http://testserver", **overrides: Any) -> TestClient:
        app = create_app(settings(emulator, tmp_path, **overrides), engine)
        client = TestClient(app, base_url=base_url)
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
    assert client.cookies.get(STATE_COOKIE)
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


def assert_cookie_cleared(answer: httpx.Response) -> None:
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f'{STATE_COOKIE}="";') and "max-age=0" in cookie.lower()
    assert "path=/api/poster/oauth" in cookie.lower()


def ours(caplog: pytest.LogCaptureFixture) -> str:
    """What the pipeline logged (not the test client's request lines)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("poster_"))


def state_rows(engine: Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(oauth_states)).all())


# --- the round trip ------------------------------------------------------------------------


def test_connect_round_trip(client: TestClient, engine: Engine, emulator: RunningEmulator):
    poster_url = start(client)

    assert poster_url.startswith(f"{emulator.api_url}/auth?")
    params = query(poster_url)
    assert params["application_id"] == APPLICATION_ID
    assert params["redirect_uri"] == REDIRECT
    assert params["response_type"] == "code"
    state = params["state"]
    browser_key = client.cookies[STATE_COOKIE]
    assert browser_key != state
    [row] = state_rows(engine)
    assert row.state_hash == hashlib.sha256(state.encode()).hexdigest()
    assert row.browser_hash == hashlib.sha256(browser_key.encode()).hexdigest()
    assert row.used_at is None
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10)

    callback = approve(poster_url, "second-cafe")
    code = query(callback)["code"]
    answer = client.get(callback)

    assert_page(answer, 200, "Connected second-cafe: the first full sync starts within a minute.")
    assert_cookie_cleared(answer)
    for secret in (code, SECRET, state, browser_key):
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
        assert poster.fetch_list("suppliers")  # the token works against Poster (the emulator)


def test_a_connected_account_gets_the_new_token_and_is_reactivated(
    client: TestClient, engine: Engine, emulator: RunningEmulator
):
    old = accounts_of(engine)
    connected_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    old.add("api-demo", "813932:" + "0" * 32, now=connected_at, time_zone="Europe/Kyiv")
    old.deactivate("api-demo", now=datetime.now(UTC))

    answer = client.get(approve(start(client), "api-demo"))

    assert_page(answer, 200, "Connected api-demo")
    account = old.get("api-demo")
    assert (account.is_active, account.auth_method, account.account_number) == (
        True,
        "oauth",
        "813932",
    )
    # A reconnection keeps the restaurant's time zone (its nightly sync) and its history.
    assert (account.time_zone, account.connected_at) == ("Europe/Kyiv", connected_at)
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


def test_the_cookie_binds_the_state_to_the_browser_and_is_private(
    client: TestClient, make_client: Any
):
    answer = client.get(AUTHORIZE, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{STATE_COOKIE}=")
    for attribute in ("HttpOnly", "Path=/api/poster/oauth", "SameSite=lax", "Max-Age=600"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain HTTP here: a Secure cookie would not return
    assert query(answer.headers["location"])["state"] not in cookie

    https = make_client(base_url="https://testserver")
    assert "; secure" in https.get(AUTHORIZE, follow_redirects=False).headers["set-cookie"].lower()
    behind_tls = make_client(redirect_uri="https://pipeline.example" + CALLBACK)
    answer = behind_tls.get(AUTHORIZE, follow_redirects=False)
    assert "; secure" in answer.headers["set-cookie"].lower()


def test_the_cookie_stands_in_for_a_state_poster_does_not_return(
    client: TestClient, engine: Engine, make_client: Any
):
    callback = approve(start(client), "second-cafe")
    params = query(callback)
    without_state = f"{REDIRECT}?{urlencode({'code': params['code'], 'account': 'second-cafe'})}"

    # Another browser, without the cookie, cannot use such a link, nor with a stale cookie.
    refused = make_client().get(without_state)
    assert_page(refused, 400, "Authorization not recognised", "no connection in progress")
    stale = make_client().get(without_state, headers={"cookie": f"{STATE_COOKIE}=stale-key"})
    assert_page(stale, 400, EXPIRED)
    assert_cookie_cleared(stale)
    assert accounts_of(engine).list() == []

    connected = client.get(without_state)
    assert_page(connected, 200, "Connected second-cafe")
    assert_cookie_cleared(connected)  # spent, so removed


@pytest.mark.parametrize("other_browser", ["without a cookie", "with its own cookie", "forged"])
def test_a_state_opened_in_another_browser_is_refused_and_spent(
    client: TestClient,
    engine: Engine,
    make_client: Any,
    caplog: pytest.LogCaptureFixture,
    other_browser: str,
):
    """A callback link passed to another browser (login CSRF) connects nothing, and is dead
    for the browser that started it too."""
    callback = approve(start(client), "second-cafe")
    params = query(callback)
    browser_key = client.cookies[STATE_COOKIE]
    other = make_client()
    headers = {}
    own_start = ""
    if other_browser == "with its own cookie":
        own_start = start(other)
    elif other_browser == "forged":
        headers["cookie"] = f"{STATE_COOKIE}=forged-key"
    other_key = other.cookies.get(STATE_COOKIE)

    with caplog.at_level(logging.INFO):
        refused = other.get(callback, headers=headers)

    assert_page(refused, 400, "Started in another browser", OTHER_BROWSER, "Start again")
    assert "set-cookie" not in refused.headers  # its own connection, if any, may go on
    assert accounts_of(engine).list() == []
    state_hash = hashlib.sha256(params["state"].encode()).hexdigest()
    [spent] = [r for r in state_rows(engine) if r.state_hash == state_hash]
    assert spent.used_at is not None
    logged = ours(caplog)
    assert "another browser" in logged
    for secret in (params["code"], params["state"], browser_key, other_key):
        if secret:
            assert secret not in refused.text and secret not in logged

    # The state is spent: the browser that started it must start again too.
    assert_page(client.get(callback), 400, EXPIRED)
    assert accounts_of(engine).list() == []
    if other_browser == "with its own cookie":  # the foreign link did not break its own
        answer = other.get(approve(own_start, "api-demo"))
        assert_page(answer, 200, "Connected api-demo")
        assert [a.account for a in accounts_of(engine).list()] == ["api-demo"]


def test_the_latest_start_of_a_browser_wins(client: TestClient, engine: Engine):
    first = approve(start(client), "second-cafe")
    second = approve(start(client), "second-cafe")
    assert_page(client.get(first), 400, OTHER_BROWSER)
    assert_page(client.get(second), 200, "Connected second-cafe")


# --- the account Poster vouches for --------------------------------------------------------


def test_a_code_approved_by_one_restaurant_cannot_be_stored_under_anothers_login(
    client: TestClient, engine: Engine
):
    """The link's ``account`` is only a claim: the code is redeemed at that account's own
    endpoint, which does not know a code another restaurant approved."""
    victim = accounts_of(engine)
    victim.add("api-demo", "813932:" + "0" * 32, now=datetime.now(UTC))
    callback = approve(start(client), "second-cafe")
    tampered = callback.replace("account=second-cafe", "account=api-demo")
    assert tampered != callback

    answer = client.get(tampered)

    assert_page(answer, 400, "Poster refused the authorization", "doesn&#x27;t exist")
    assert [a.account for a in victim.list()] == ["api-demo"]
    assert victim.token("api-demo") == "813932:" + "0" * 32


def test_a_login_keeps_its_account_number(client: TestClient, engine: Engine):
    store = accounts_of(engine)
    store.add("api-demo", "999999:" + "0" * 32, now=datetime.now(UTC))  # another restaurant

    answer = client.get(approve(start(client), "api-demo"))

    assert_page(
        answer,
        409,
        "This authorization is for another restaurant",
        "api-demo is account number 999999",
        "Nothing was stored",
    )
    assert store.token("api-demo") == "999999:" + "0" * 32
    assert store.get("api-demo").auth_method == "personal"


def test_a_restaurant_connected_under_another_login_is_refused(
    client: TestClient, engine: Engine, emulator: RunningEmulator
):
    number = next(a.number for a in emulator.config.accounts if a.name == "second-cafe")
    store = accounts_of(engine)
    store.add("old-login", f"{number}:" + "0" * 32, now=datetime.now(UTC))

    answer = client.get(approve(start(client), "second-cafe"))

    assert_page(answer, 409, "This restaurant is already connected", "as old-login")
    assert [a.account for a in store.list()] == ["old-login"]


@pytest.fixture
def fake_token_endpoint() -> Iterator[tuple[str, list[str], dict[str, Any]]]:
    """A stand-in for Poster's token endpoint that answers ``answer`` (set by the test) and
    records the paths it was asked; yields (its api_url, the paths, the answer)."""
    paths: list[str] = []
    answer: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api", paths, answer
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(
    "token_answer",
    [
        {"access_token": "111111:" + "f" * 32, "account_number": "222222"},
        {"access_token": "f" * 32, "account_number": "222222"},
        {"access_token": "222222:" + "f" * 32},
    ],
    ids=["another prefix", "no prefix", "no account number"],
)
def test_a_token_answer_that_does_not_add_up_is_refused(
    make_client: Any,
    engine: Engine,
    fake_token_endpoint: tuple[str, list[str], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    token_answer: dict[str, Any],
):
    api_url, paths, answer = fake_token_endpoint
    answer.update(token_answer)
    client = make_client(api_url=api_url)
    state = query(start(client))["state"]

    with caplog.at_level(logging.INFO):
        page = client.get(CALLBACK, params={"code": "c" * 32, "account": "cafe", "state": state})

    assert paths == ["/api/v2/auth/access_token?account=cafe"]  # the account's own endpoint
    assert_page(page, 502, "Poster&#x27;s answer did not add up", "Nothing was stored")
    assert accounts_of(engine).list() == []
    logged = ours(caplog)
    for secret in ("f" * 32, "c" * 32):
        assert secret not in page.text and secret not in logged


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
    logged = ours(caplog)
    assert "Requested code's application doesn't exist" in logged
    for secret in (wrong_secret, code):
        assert secret not in answer.text and secret not in logged
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
