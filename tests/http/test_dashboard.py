"""The operators' page over HTTP on PostgreSQL: what it shows (the grid driven by the
catalogue, the queue, dead events, Dagster links), filters and pages, and how it is protected
(disabled without a key, bearer header, login form, cookie, CSRF, throttling, escaping)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.http.dashboard import PAGE_SIZE, SESSION_COOKIE
from poster_pipeline.http.dashboard_auth import MAX_FAILURES, SESSION_MAX_AGE
from tests.databases import fresh_engine
from tests.http.dashboard_fixtures import (
    API_KEY,
    DASHBOARD,
    LOGIN,
    LOGOUT,
    add_accounts,
    add_event,
    app_client,
    empty,
    failed,
    form_token,
    log_in,
    synced,
)

ENTITY_NAMES = [spec.name for spec in ENTITIES]
BEARER = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = fresh_engine("postgresql", tmp_path_factory.mktemp("dash"), "_dashboard")
    yield engine
    engine.dispose()


@pytest.fixture
def engine(warehouse: Engine) -> Engine:
    """``api-demo`` (one entity fresh, one failed, the rest never synced), ``second-cafe``
    (every entity fresh), ``closed-cafe`` (inactive)."""
    empty(warehouse)
    add_accounts(warehouse, ["api-demo", "second-cafe"])
    add_accounts(warehouse, ["closed-cafe"], active=False)
    synced(warehouse, "api-demo", "ingredients", ago=timedelta(minutes=5), rows=42)
    failed(warehouse, "api-demo", "products", "products sync of account api-demo failed: HTTP 500")
    for entity in ENTITY_NAMES:
        synced(warehouse, "second-cafe", entity, ago=timedelta(hours=1))
    return warehouse


def cells(html: str) -> dict[tuple[str, str], str]:
    """(account, entity) → state, as the grid's cells say."""
    found = re.findall(r'data-account="([^"]*)" data-entity="([^"]*)" data-state="([^"]*)"', html)
    return {(unescape(a), e): s for a, e, s in found}


def cell_html(html: str, account: str, entity: str) -> str:
    start = html.index(f'data-account="{account}" data-entity="{entity}"')
    return html[start : html.index("</td>", start)]


# --- access ---------------------------------------------------------------------------------


def test_without_an_api_key_every_route_answers_503_saying_how_to_turn_it_on(engine):
    with app_client(engine, api_key=None) as client:
        for method, path in (("GET", DASHBOARD), ("GET", LOGIN), ("POST", LOGIN), ("POST", LOGOUT)):
            answer = client.request(method, path, headers=BEARER)
            assert answer.status_code == 503, path
            assert "set POSTER_API_KEY" in answer.text
            assert "api-demo" not in answer.text


def test_without_credentials_the_page_sends_to_the_login_form_and_shows_no_data(engine):
    with app_client(engine) as client:
        answer = client.get(DASHBOARD, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == LOGIN
        assert "api-demo" not in answer.text
        login = client.get(DASHBOARD)  # followed
        assert login.url.path == LOGIN and 'type="password"' in login.text
        assert "api-demo" not in login.text


def test_a_script_reads_the_page_with_the_bearer_key(engine):
    with app_client(engine) as client:
        answer = client.get(DASHBOARD, headers=BEARER)
        assert answer.status_code == 200
        assert ("api-demo", "ingredients") in cells(answer.text)
        assert "logout" not in answer.text  # no session, no logout form
        wrong = client.get(DASHBOARD, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "api-demo" not in wrong.text


def test_logging_in_sets_a_signed_http_only_lax_expiring_cookie(engine):
    with app_client(engine) as client:
        answer = log_in(client)
        assert answer.status_code == 303 and answer.headers["location"] == DASHBOARD
        [cookie] = [
            c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")
        ]
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes and "samesite=lax" in attributes
        assert f"max-age={int(SESSION_MAX_AGE.total_seconds())}" in attributes
        assert "path=/dashboard" in attributes
        assert "secure" not in attributes  # plain http: a Secure cookie would not come back
        assert API_KEY not in cookie
        page = client.get(DASHBOARD)
        assert page.status_code == 200 and "api-demo" in page.text


def test_over_https_the_cookie_is_secure(engine):
    with app_client(engine, base_url="https://testserver") as client:
        answer = log_in(client)
        [cookie] = [
            c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")
        ]
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_a_forged_tampered_or_expired_cookie_is_refused(engine, monkeypatch):
    with app_client(engine) as client:
        log_in(client)
        good = client.cookies[SESSION_COOKIE]
        payload, stamp, signature = good.split(".")
        for forged in (
            "anything",
            f"{payload}.{stamp}.{signature[:-2]}xx",
            good.replace(payload, payload[::-1]),
        ):
            client.cookies.set(SESSION_COOKIE, forged, path="/dashboard")
            answer = client.get(DASHBOARD, follow_redirects=False)
            assert answer.status_code == 303, forged

    # Issued longer ago than a session lasts: itsdangerous reads its clock through time.time.
    with app_client(engine) as client:
        real = __import__("time").time
        monkeypatch.setattr(
            "itsdangerous.timed.time.time", lambda: real() - SESSION_MAX_AGE.total_seconds() - 60
        )
        log_in(client)
        monkeypatch.undo()
        assert client.get(DASHBOARD, follow_redirects=False).status_code == 303


def test_a_session_of_another_key_is_refused(engine):
    with app_client(engine, api_key="the-old-key") as old:
        log_in(old, key="the-old-key")
        cookie = old.cookies[SESSION_COOKIE]
    with app_client(engine) as client:
        client.cookies.set(SESSION_COOKIE, cookie, path="/dashboard")
        assert client.get(DASHBOARD, follow_redirects=False).status_code == 303


def test_a_wrong_key_shows_the_form_again_and_reveals_nothing(engine, caplog):
    caplog.set_level(logging.DEBUG)
    with app_client(engine) as client:
        answer = log_in(client, key="guess-7Hq2pX")
        assert answer.status_code == 401
        assert SESSION_COOKIE not in client.cookies
        assert "That is not the key." in answer.text
        assert "api-demo" not in answer.text and "7Hq2pX" not in answer.text
        log_in(client)  # a success logs no key either
    assert "7Hq2pX" not in caplog.text and API_KEY not in caplog.text
    assert "a failed login from" in caplog.text


def test_failed_logins_are_throttled_per_client(engine):
    with app_client(engine) as client:
        for _ in range(MAX_FAILURES):
            assert log_in(client, key="wrong").status_code == 401
        form = client.get(LOGIN)
        answer = client.post(
            LOGIN, data={"token": form_token(form.text), "key": API_KEY}, follow_redirects=False
        )
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
        assert SESSION_COOKIE not in client.cookies
        # Wrong bearer keys count too, and the right one waits as well.
        assert client.get(DASHBOARD, headers=BEARER).status_code == 429


def test_the_login_form_refuses_a_post_without_its_token_or_from_another_site(engine):
    with app_client(engine) as client:
        # A cross-site form: no token of ours (the attacker cannot read the cookie).
        answer = client.post(LOGIN, data={"key": API_KEY}, follow_redirects=False)
        assert answer.status_code == 403 and SESSION_COOKIE not in client.cookies
        # The right token, but the browser says the form came from elsewhere.
        token = form_token(client.get(LOGIN).text)
        answer = client.post(
            LOGIN,
            data={"token": token, "key": API_KEY},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert answer.status_code == 403 and SESSION_COOKIE not in client.cookies
        # A token that is not the cookie's.
        client.get(LOGIN)
        answer = client.post(
            LOGIN, data={"token": token + "x", "key": API_KEY}, follow_redirects=False
        )
        assert answer.status_code == 403


def test_logout_ends_the_session_and_needs_the_pages_token(engine):
    with app_client(engine) as client:
        log_in(client)
        page = client.get(DASHBOARD)
        refused = client.post(LOGOUT, data={"token": "not-it"}, follow_redirects=False)
        assert refused.status_code == 403
        assert client.get(DASHBOARD, follow_redirects=False).status_code == 200
        answer = client.post(LOGOUT, data={"token": form_token(page.text)}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == LOGIN
        assert SESSION_COOKIE not in client.cookies
        assert client.get(DASHBOARD, follow_redirects=False).status_code == 303


def test_every_answer_is_not_stored_and_not_framed(engine):
    with app_client(engine) as client:
        answers = [client.get(LOGIN), client.get(DASHBOARD, headers=BEARER)]
        answers.append(client.get(DASHBOARD, follow_redirects=False))
        for answer in answers:
            assert answer.headers["cache-control"] == "no-store"
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_names_and_errors_from_outside_are_escaped(engine):
    evil = '<script>alert("x")</script>'
    add_accounts(engine, [evil])
    failed(engine, evil, "ingredients", 'failed: <img src=x onerror="alert(1)">')
    with app_client(engine) as client:
        html = client.get(DASHBOARD, headers=BEARER).text
    assert evil not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert cells(html)[evil, "ingredients"] == "failed"


# --- what it shows --------------------------------------------------------------------------


def test_the_grid_has_a_column_per_catalogue_entity_and_a_row_per_active_account(engine):
    with app_client(engine) as client:
        html = client.get(DASHBOARD, headers=BEARER).text
    grid = cells(html)
    assert {account for account, _ in grid} == {"api-demo", "second-cafe"}  # not closed-cafe
    assert {entity for _, entity in grid} == set(ENTITY_NAMES)
    assert grid["api-demo", "products"] == "failed"
    assert grid["api-demo", "ingredients"] == "ok"
    assert grid["api-demo", ENTITY_NAMES[0]] in ("never", "ok")
    assert all(grid["second-cafe", e] == "ok" for e in ENTITY_NAMES)
    failing = cell_html(html, "api-demo", "products")
    assert "HTTP 500" in failing and "full-error" in failing
    fresh = cell_html(html, "api-demo", "ingredients")
    assert "5 min ago" in fresh and "42 rows" in fresh and "needs sync" not in fresh
    never = cell_html(html, "api-demo", "suppliers")
    assert 'data-state="never"' in never and "needs sync" in never


def test_a_stale_entity_needs_a_sync_and_a_partial_error_shows_as_failed(engine):
    synced(engine, "api-demo", "suppliers", ago=timedelta(hours=30))
    failed(engine, "second-cafe", "ingredients", "ingredient 7: HTTP 500", kind="partial")
    with app_client(engine) as client:
        html = client.get(DASHBOARD, headers=BEARER).text
    stale = cell_html(html, "api-demo", "suppliers")
    assert 'data-state="stale"' in stale and "30 h ago" in stale and "needs sync" in stale
    partial = cell_html(html, "second-cafe", "ingredients")
    assert 'data-state="failed"' in partial and "partial: ingredient 7: HTTP 500" in partial


def test_the_queue_by_status_with_the_oldest_pending_age_and_the_dead_events(engine):
    add_event(engine, "api-demo", "ingredients", "pending", received_ago=timedelta(minutes=7))
    add_event(engine, "api-demo", "ingredients", "pending")
    add_event(engine, "api-demo", "products", "dead", error="HTTP 500 <from Poster>")
    add_event(engine, "second-cafe", None, "ignored")
    add_event(engine, "second-cafe", "ingredients", "done")
    with app_client(engine) as client:
        html = client.get(DASHBOARD, headers=BEARER).text
    counts = dict(re.findall(r'<td data-status="(\w+)">(\d+)</td>', html))
    assert counts == {"pending": "2", "claimed": "0", "done": "1", "ignored": "1", "dead": "1"}
    assert re.search(r'id="oldest-pending">7 min<', html)
    dead = html[html.index('id="dead"') :]
    assert "HTTP 500 &lt;from Poster&gt;" in dead and "api-demo" in dead
    assert "2 queued" in cell_html(html, "api-demo", "ingredients")
    assert "1 dead" in cell_html(html, "api-demo", "products")


def test_an_empty_queue_says_so(engine):
    with app_client(engine) as client:
        html = client.get(DASHBOARD, headers=BEARER).text
    assert re.search(r'id="oldest-pending">none<', html) and 'id="dead"' not in html


def test_each_cell_links_to_its_asset_partition_in_dagster_when_the_url_is_set(engine):
    with app_client(engine, dagster_url="http://dagster.local:3000/") as client:
        html = client.get(DASHBOARD, headers=BEARER).text
    links = set(re.findall(r'class="dagster muted" href="([^"]+)"', html))
    assert len(links) == 2 * len(ENTITY_NAMES)
    assert (
        "http://dagster.local:3000/assets/poster/ingredients?partition=api-demo&amp;view=partitions"
        in links
    )
    with app_client(engine) as client:
        assert 'class="dagster' not in client.get(DASHBOARD, headers=BEARER).text


# --- 500 restaurants: filters and pages in SQL ----------------------------------------------


@pytest.fixture
def many(engine: Engine) -> Engine:
    """500 more restaurants, ``r000``…``r499``; every tenth fails, the others are fresh."""
    names = [f"r{n:03d}" for n in range(500)]
    add_accounts(engine, names)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sync_status (account, entity, last_full_sync_at, last_attempt_at,"
                " last_full_attempt_at, last_success, rows_active, rows_total)"
                " SELECT a, e, now(), now(), now(), true, 5, 5"
                " FROM unnest(CAST(:accounts AS text[])) a, unnest(CAST(:entities AS text[])) e"
            ),
            {"accounts": names, "entities": ENTITY_NAMES},
        )
    for name in names[::10]:
        failed(engine, name, "suppliers", "HTTP 500")
    return engine


def accounts_shown(html: str) -> list[str]:
    return [unescape(a) for a in re.findall(r'<tr data-account="([^"]*)">', html)]


def test_500_restaurants_are_paginated(many):
    with app_client(many) as client:
        first = client.get(DASHBOARD, headers=BEARER).text
        assert len(accounts_shown(first)) == PAGE_SIZE
        assert "of 502 (page 1 of 11)" in first
        last = client.get(f"{DASHBOARD}?page=11", headers=BEARER).text
        assert accounts_shown(last) == ["r499", "second-cafe"]
        beyond = client.get(f"{DASHBOARD}?page=12", headers=BEARER).text
        assert accounts_shown(beyond) == []


def test_filters_by_name_and_by_state(many):
    with app_client(many) as client:
        named = client.get(f"{DASHBOARD}?q=R04", headers=BEARER).text
        assert accounts_shown(named) == [f"r04{n}" for n in range(10)]
        failing = client.get(f"{DASHBOARD}?state=failing", headers=BEARER).text
        assert "of 51 " in failing  # r000, r010, …, r490 and api-demo
        assert set(accounts_shown(failing)) <= {f"r{n:03d}" for n in range(0, 500, 10)} | {
            "api-demo"
        }
        stale = client.get(f"{DASHBOARD}?state=stale", headers=BEARER).text
        assert accounts_shown(stale) == ["api-demo"]  # never synced most of its entities
        # Wildcards are taken literally.
        assert accounts_shown(client.get(f"{DASHBOARD}?q=%25", headers=BEARER).text) == []
        assert accounts_shown(client.get(f"{DASHBOARD}?q=_", headers=BEARER).text) == []
        # The pager keeps the filters.
        page = client.get(f"{DASHBOARD}?state=failing", headers=BEARER).text
        assert 'href="/dashboard?state=failing&amp;page=2"' in page
        page = client.get(f"{DASHBOARD}?q=r0&page=2", headers=BEARER).text
        assert accounts_shown(page) == [f"r0{n}" for n in range(50, 100)]
        assert 'href="/dashboard?q=r0"' in page and "next" not in page.split('id="pager"')[1][:400]


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=abc",
        "page=-1",
        "page=%C2%B2",
        "page=9999999",
        "state=broken",
        "q=" + "x" * 101,
    ],
)
def test_a_bad_filter_is_answered_400_with_what_to_fix(engine, query):
    with app_client(engine) as client:
        answer = client.get(f"{DASHBOARD}?{query}", headers=BEARER)
        assert answer.status_code == 400 and "api-demo" not in answer.text
        assert re.search(r"page must|state must|longer than", answer.text)


def statements_for_a_page(engine: Engine, query: str = "") -> int:
    count = 0

    def counted(*_: object) -> None:
        nonlocal count
        count += 1

    sa.event.listen(engine, "before_cursor_execute", counted)
    try:
        with app_client(engine) as client:
            assert client.get(f"{DASHBOARD}{query}", headers=BEARER).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", counted)
    return count


def test_a_page_costs_the_same_few_queries_for_2_or_502_restaurants(engine, many_factory):
    few = statements_for_a_page(engine)
    many_factory()
    assert statements_for_a_page(engine) == few <= 8
    assert statements_for_a_page(engine, "?state=failing&page=2") == few


@pytest.fixture
def many_factory(request: pytest.FixtureRequest):
    return lambda: request.getfixturevalue("many")


def test_the_embedded_sqlite_warehouse_serves_the_same_page(tmp_path):
    """The demo's default warehouse: the same queries work on SQLite."""
    engine = fresh_engine("sqlite", tmp_path)
    try:
        add_accounts(engine, ["api-demo", "second-cafe", "100%_cafe"])
        synced(engine, "api-demo", "ingredients", ago=timedelta(minutes=5))
        failed(engine, "second-cafe", "products", "HTTP 500")
        add_event(engine, "api-demo", "ingredients", "pending", received_ago=timedelta(hours=3))
        add_event(engine, "api-demo", "ingredients", "dead", error="gone")
        with app_client(engine) as client:
            html = client.get(DASHBOARD, headers=BEARER).text
            grid = cells(html)
            assert grid["api-demo", "ingredients"] == "ok"
            assert grid["second-cafe", "products"] == "failed"
            assert re.search(r'id="oldest-pending">3 h<', html)
            failing = client.get(f"{DASHBOARD}?state=failing", headers=BEARER).text
            assert accounts_shown(failing) == ["second-cafe"]
            literal = client.get(f"{DASHBOARD}?q=0%25_", headers=BEARER).text
            assert accounts_shown(literal) == ["100%_cafe"]
            assert accounts_shown(client.get(f"{DASHBOARD}?q=DEMO", headers=BEARER).text) == [
                "api-demo"
            ]
            stale = client.get(f"{DASHBOARD}?state=stale", headers=BEARER).text
            assert len(accounts_shown(stale)) == 3
    finally:
        engine.dispose()
