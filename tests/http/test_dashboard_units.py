"""The dashboard's pure parts: the login throttle, the origin check, Dagster links, spans,
the session keys."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from poster_pipeline.http.dashboard_auth import DashboardKeys, LoginThrottle, same_origin
from poster_pipeline.http.dashboard_view import dagster_link, span
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_holds_a_client_back_until_its_window_moves_on():
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window=timedelta(minutes=10), clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
        clock.now += 60
    assert throttle.retry_after("10.0.0.1") == 421  # the first failure leaves the window then
    assert throttle.retry_after("10.0.0.2") is None  # others are not held back
    clock.now += 421
    assert throttle.retry_after("10.0.0.1") is None


def test_the_origin_must_name_this_host_when_a_browser_sends_one():
    assert same_origin(None, "ops.example:8080")
    assert same_origin("https://ops.example:8080", "ops.example:8080")
    assert same_origin("http://OPS.example", "ops.example")
    assert not same_origin("https://evil.example", "ops.example")
    assert not same_origin("https://ops.example.evil.example", "ops.example")
    assert not same_origin("null", "ops.example")
    assert not same_origin("https://ops.example", None)


def test_dagster_links_name_the_asset_partition_and_encode_the_account():
    assert (
        dagster_link("http://dagster:3000/", "ingredients", "api-demo")
        == "http://dagster:3000/assets/poster/ingredients?partition=api-demo&view=partitions"
    )
    assert (
        dagster_link("https://ops.example/dagster", "stock", "café & co/1")
        == "https://ops.example/dagster/assets/poster/stock"
        "?partition=caf%C3%A9%20%26%20co%2F1&view=partitions"
    )
    assert dagster_link(None, "stock", "a") is None and dagster_link("  ", "stock", "a") is None


def test_spans_read_as_a_person_would_say_them():
    cases = {0: "0 s", 119: "119 s", 120: "2 min", 7199: "119 min", 7200: "2 h", 172800: "2 d"}
    for seconds, text in cases.items():
        assert span(timedelta(seconds=seconds)) == text


def test_sessions_and_login_tokens_are_bound_to_the_key_and_to_their_purpose():
    keys, other = DashboardKeys("key-one"), DashboardKeys("key-two")
    cookie, session = keys.new_session()
    assert keys.session(cookie) == session and other.session(cookie) is None
    token = keys.new_login_token()
    assert keys.login_token_valid(token, token)
    assert not other.login_token_valid(token, token)
    assert not keys.login_token_valid(token, token + "x")
    # A session cookie is no login token, nor the other way round.
    assert not keys.login_token_valid(cookie, cookie) and keys.session(token) is None
    assert keys.matches("key-one") and not keys.matches("key-on") and not keys.matches("")


def test_every_template_is_package_data_so_a_non_editable_install_has_it():
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["poster_pipeline.http"]
    package = root / "poster_pipeline" / "http"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    templates = {path for path in (package / "templates").rglob("*") if path.is_file()}
    assert templates and templates <= shipped


@pytest.mark.parametrize("url", ["javascript:alert(1)", "dagster.local:3000", "ftp://x"])
def test_a_dagster_url_that_is_not_http_is_refused_when_the_server_starts(url):
    with pytest.raises(ReceiverConfigError, match="POSTER_DAGSTER_URL must be"):
        ReceiverSettings(application_secret="s", dagster_url=url)
    assert ReceiverSettings(application_secret="s", dagster_url="https://ops/dagster")
