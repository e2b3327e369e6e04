"""The emulator's OAuth: authorize redirect, code exchange at the approving account's
endpoint, the issued token, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from starlette.requests import Request

from poster_pipeline.emulator import (
    EmulatorAccount,
    EmulatorConfig,
    RunningEmulator,
    start_in_thread,
)
from poster_pipeline.emulator.oauth import CODE_TTL_SECONDS, OAuthService
from poster_pipeline.emulator.state import EmulatorState

REDIRECT = "http://localhost:3000/api/poster/oauth/callback"
CONFIG = EmulatorConfig(
    accounts=(
        EmulatorAccount.derive("api-demo", seed=3, number=813932),
        EmulatorAccount.derive("second-cafe", seed=3, number=555002),
    ),
    seed=3,
    application_id="app-17",
    application_secret="s3cret",
    sizes={"suppliers": 3, "ingredients": 5, "products": 5},
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_in_thread(CONFIG) as running:
        yield running


def authorize(emulator: RunningEmulator, **params: str) -> requests.Response:
    query = {"application_id": "app-17", "redirect_uri": REDIRECT, "response_type": "code"}
    query.update(params)
    return requests.get(f"{emulator.api_url}/auth", params=query, allow_redirects=False, timeout=5)


def callback(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def exchange(
    emulator: RunningEmulator,
    code: str,
    overrides: dict[str, str] | None = None,
    *,
    account: str = "api-demo",
) -> requests.Response:
    """POST to ``account``'s token endpoint (Poster's ``{account}.joinposter.com``)."""
    form = {
        "application_id": "app-17",
        "application_secret": "s3cret",
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code": code,
        **(overrides or {}),
    }
    # Multipart form data, as Poster's docs ask and the pipeline's client sends.
    files = {name: (None, value) for name, value in form.items()}
    return requests.post(
        f"{emulator.api_url}/v2/auth/access_token",
        params={"account": account},
        files=files,
        timeout=5,
    )


def test_authorize_redirects_with_code_account_and_state(emulator: RunningEmulator) -> None:
    params = callback(authorize(emulator, state="xyz-1"))
    assert set(params) == {"code", "account", "state"}
    assert len(params["code"]) == 32 and params["account"] == "api-demo"
    assert params["state"] == "xyz-1"
    assert callback(authorize(emulator, account="second-cafe"))["account"] == "second-cafe"
    assert "state" not in callback(authorize(emulator))


def test_exchange_gives_a_working_token_once(emulator: RunningEmulator) -> None:
    code = callback(authorize(emulator, account="second-cafe", state="s"))["code"]
    answer = exchange(emulator, code, account="second-cafe")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "account_number", "user", "ownerInfo"}
    assert body["account_number"] == "555002"
    assert body["access_token"].startswith("555002:") and len(body["access_token"]) == 39
    assert set(body["user"]) == {"id", "name", "email", "role_id"}
    assert {"email", "phone", "city", "country", "name", "company_name"} == set(body["ownerInfo"])
    rows = requests.get(
        f"{emulator.api_url}/storage.getSuppliers",
        params={"token": body["access_token"]},
        timeout=5,
    ).json()["response"]
    second = CONFIG.accounts[1].token
    expected = requests.get(
        f"{emulator.api_url}/storage.getSuppliers", params={"token": second}, timeout=5
    ).json()["response"]
    assert rows == expected
    accounts = requests.get(f"{emulator.control_url}/accounts", timeout=5).json()
    assert body["access_token"] in accounts[1]["tokens"]
    reused = exchange(emulator, code, account="second-cafe").json()
    assert reused["error_type"] == "invalid_grant" and reused["code"] == 400


def test_a_code_is_redeemed_only_at_the_endpoint_of_the_account_that_approved_it(
    emulator: RunningEmulator,
) -> None:
    code = callback(authorize(emulator, account="second-cafe"))["code"]

    for elsewhere in ("api-demo", "nobody"):
        answer = exchange(emulator, code, account=elsewhere)
        assert answer.status_code == 400
        assert answer.json() == {
            "code": 400,
            "error_type": "invalid_grant",
            "error_message": "Authorization code doesn't exist",
        }
    # Refused elsewhere, the code still works where it belongs, for that account only.
    answer = exchange(emulator, code, account="second-cafe")
    assert answer.status_code == 200 and answer.json()["account_number"] == "555002"


def test_the_token_endpoint_needs_an_account(emulator: RunningEmulator) -> None:
    code = callback(authorize(emulator))["code"]
    answer = exchange(emulator, code, account="")
    assert answer.status_code == 400
    assert {"error": 34, "field": "account"}.items() <= answer.json().items()
    assert exchange(emulator, code).status_code == 200


def test_urlencoded_form_is_accepted(emulator: RunningEmulator) -> None:
    code = callback(authorize(emulator))["code"]
    form = {
        "application_id": "app-17",
        "application_secret": "s3cret",
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code": code,
    }
    answer = requests.post(
        f"{emulator.api_url}/v2/auth/access_token?account=api-demo", data=form, timeout=5
    )
    assert answer.json()["account_number"] == "813932"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"application_secret": "wrong"},
            {
                "error": 143,
                "message": "Requested code's application doesn't exist",
                "field": "application_id",
            },
        ),
        (
            {"application_id": "other-app"},
            {
                "error": 143,
                "message": "Requested code's application doesn't exist",
                "field": "application_id",
            },
        ),
        ({"code": ""}, {"error": 34, "message": "code is required", "field": "code"}),
        ({"code": "0" * 32}, {"error_type": "invalid_grant"}),
        ({"redirect_uri": "http://evil.example/cb"}, {"error_type": "invalid_grant"}),
        ({"grant_type": "password"}, {"error_type": "unsupported_grant_type"}),
    ],
)
def test_exchange_refusals(
    emulator: RunningEmulator, overrides: dict[str, str], expected: dict[str, Any]
) -> None:
    code = callback(authorize(emulator))["code"]
    answer = exchange(emulator, code, overrides)
    assert answer.status_code == 400
    assert expected.items() <= answer.json().items()
    assert exchange(emulator, code).status_code == 200  # a refusal does not use the code up


@pytest.mark.parametrize(
    "params",
    [
        {"application_id": "unknown"},
        {"redirect_uri": ""},
        {"response_type": "token"},
        {"account": "nobody"},
    ],
)
def test_authorize_refusals_are_400_pages(
    emulator: RunningEmulator, params: dict[str, str]
) -> None:
    answer = authorize(emulator, **params)
    assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]


def test_client_id_is_accepted_for_application_id(emulator: RunningEmulator) -> None:
    answer = requests.get(
        f"{emulator.api_url}/auth",
        params={"client_id": "app-17", "redirect_uri": REDIRECT, "response_type": "code"},
        allow_redirects=False,
        timeout=5,
    )
    assert callback(answer)["account"] == "api-demo"


def test_codes_expire_after_ten_minutes() -> None:
    now = [1000.0]
    config = EmulatorConfig(sizes=dict.fromkeys(("ingredients", "products", "suppliers"), 1))
    service = OAuthService(config, EmulatorState(config), clock=lambda: now[0])
    query = urlencode(
        {"application_id": "demo-app", "redirect_uri": REDIRECT, "response_type": "code"}
    )
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/auth",
        "query_string": query.encode(),
        "headers": [],
    }
    redirect = asyncio.run(service.authorize(Request(scope)))
    code = parse_qs(urlparse(redirect.headers["location"]).query)["code"][0]
    form = {
        "application_id": "demo-app",
        "application_secret": "demo-secret",
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code": code,
    }
    now[0] += CODE_TTL_SECONDS + 1
    body = json.loads(bytes(service.exchange(form, endpoint_account=config.accounts[0].name).body))
    assert body["error_type"] == "invalid_grant" and "expired" in body["error_message"]
