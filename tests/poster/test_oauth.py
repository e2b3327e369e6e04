"""OAuth: the authorize URL, the token endpoint, the token answer's forms (and when it does not
add up), and a round trip with the emulator."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from poster_pipeline.poster import PosterClient
from poster_pipeline.poster.oauth import (
    DEFAULT_TOKEN_URL,
    OAuthAnswerError,
    OAuthError,
    authorize_url,
    exchange_code,
    parse_token_response,
    token_url_for,
)
from tests.conftest import fast_settings

REDIRECT = "https://pipeline.example/api/poster/oauth/callback"


def test_authorize_url_carries_the_documented_parameters():
    url = authorize_url(application_id="1234", redirect_uri=REDIRECT, state="s-1")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "joinposter.com", "/api/auth")
    assert parse_qs(parts.query) == {
        "application_id": ["1234"],
        "redirect_uri": [REDIRECT],
        "response_type": ["code"],
        "state": ["s-1"],
    }
    with pytest.raises(ValueError):
        authorize_url(application_id="1234", redirect_uri=REDIRECT, state="")


def test_the_documented_token_answer_is_parsed():
    body = {
        "access_token": "861052:02391570ff9af128e93c5a771055ba88",
        "account_number": "861052",
        "user": {"id": 4, "name": "Poster", "email": "dev@joinposter.com", "role_id": 3},
        "ownerInfo": {"company_name": "dev-example", "country": "RU"},
        "tariff": {"key": "pricing-plan-1", "price": 2},
    }
    token = parse_token_response(200, body)
    assert token.account_number == "861052"
    assert token.owner_info["company_name"] == "dev-example"
    assert "02391570ff9af128" not in repr(token)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {
                "error": 143,
                "message": "Requested code's application doesn't exist",
                "field": "application_id",
            },
            143,
            "application_id",
        ),
        ({"error": 142, "message": "Verify code is not correct", "field": "verify"}, 142, "verify"),
        ({"code": 400, "error_type": "invalid_grant", "error_message": "Code is used"}, 400, None),
        ({"error": {"code": 11, "message": "Bad"}}, 11, None),
        ({"error": "denied"}, None, None),
    ],
)
def test_every_error_form_is_an_oauth_error(body, code, field):
    with pytest.raises(OAuthError) as caught:
        parse_token_response(200, body)
    assert caught.value.code == code
    assert caught.value.field == field


@pytest.mark.parametrize("body", [None, [], {}, {"access_token": ""}])
def test_an_answer_without_a_token_is_an_oauth_error(body):
    with pytest.raises(OAuthError):
        parse_token_response(200, body)


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "861052:02391570ff9af128e93c5a771055ba88"},  # no account_number
        {"access_token": "861052:02391570ff9af128e93c5a771055ba88", "account_number": ""},
        {"access_token": "861052:02391570ff9af128e93c5a771055ba88", "account_number": None},
        {"access_token": "861052:02391570ff9af128e93c5a771055ba88", "account_number": True},
        # The prefix is another account's number, a longer one, or there is no prefix at all.
        {"access_token": "861053:02391570ff9af128e93c5a771055ba88", "account_number": "861052"},
        {"access_token": "8610521:02391570ff9af128e93c5a771055ba88", "account_number": 861052},
        {"access_token": "02391570ff9af128e93c5a771055ba88", "account_number": "861052"},
        {"access_token": "861052:", "account_number": "861052"},
    ],
)
def test_an_answer_that_does_not_say_consistently_whose_token_it_is_is_refused(body):
    with pytest.raises(OAuthAnswerError) as caught:
        parse_token_response(200, body)
    assert "02391570ff9af128" not in str(caught.value)


def test_a_numeric_account_number_matches_the_token_prefix():
    body = {"access_token": "861052:02391570ff9af128e93c5a771055ba88", "account_number": 861052}
    assert parse_token_response(200, body).account_number == "861052"


def test_the_token_url_is_the_accounts_own_endpoint():
    """Poster's is the account's subdomain; elsewhere (the emulator) a query parameter."""
    assert DEFAULT_TOKEN_URL == "https://{account}.joinposter.com/api/v2/auth/access_token"
    assert token_url_for("https://joinposter.com/api") == DEFAULT_TOKEN_URL
    assert token_url_for("https://joinposter.com/api/") == DEFAULT_TOKEN_URL
    emulator = token_url_for("http://127.0.0.1:9/api/")
    assert emulator.format(account="cafe") == (
        "http://127.0.0.1:9/api/v2/auth/access_token?account=cafe"
    )
    assert token_url_for("http://h/{x}/api").format(account="a") == (
        "http://h/{x}/api/v2/auth/access_token?account=a"
    )


def test_an_account_that_is_not_a_login_never_reaches_a_host_name():
    with pytest.raises(OAuthError, match="not a Poster account login"):
        exchange_code(
            code="x", account="evil.example/x", application_id="1", application_secret="s",
            redirect_uri=REDIRECT,
        )  # fmt: skip


def approve(emulator, account: str, state: str) -> dict[str, str]:
    """Follow the authorize step as a browser would and return the callback's parameters."""
    url = authorize_url(
        application_id=emulator.config.application_id,
        redirect_uri=REDIRECT,
        state=state,
        base_url=emulator.api_url,
    )
    answer = requests.get(url, params={"account": account}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def token_url(emulator) -> str:
    return token_url_for(emulator.api_url)


def test_oauth_round_trip_gives_a_working_token(emulator):
    account = emulator.config.accounts[1]
    callback = approve(emulator, account.name, state="state-42")
    assert callback["state"] == "state-42"
    assert callback["account"] == account.name
    token = exchange_code(
        code=callback["code"],
        account=callback["account"],
        application_id=emulator.config.application_id,
        application_secret=emulator.config.application_secret,
        redirect_uri=REDIRECT,
        token_url=token_url(emulator),
    )
    assert token.account_number == str(account.number)
    assert token.account == account.name
    with PosterClient(token.access_token, settings=fast_settings(emulator.api_url)) as poster:
        assert poster.fetch_list("storages")


def test_a_code_is_single_use(emulator):
    callback = approve(emulator, "api-demo", state="s")
    exchange = dict(
        code=callback["code"],
        account="api-demo",
        application_id=emulator.config.application_id,
        application_secret=emulator.config.application_secret,
        redirect_uri=REDIRECT,
        token_url=token_url(emulator),
    )
    exchange_code(**exchange)
    with pytest.raises(OAuthError):
        exchange_code(**exchange)


def test_a_code_is_refused_at_another_accounts_endpoint(emulator):
    """A code approved by api-demo cannot become a token of second-cafe: Poster redeems it
    only at api-demo's own endpoint."""
    callback = approve(emulator, "api-demo", state="s")
    exchange = dict(
        code=callback["code"],
        application_id=emulator.config.application_id,
        application_secret=emulator.config.application_secret,
        redirect_uri=REDIRECT,
        token_url=token_url(emulator),
    )
    with pytest.raises(OAuthError, match="doesn't exist") as caught:
        exchange_code(account="second-cafe", **exchange)
    assert not isinstance(caught.value, OAuthAnswerError)
    assert callback["code"] not in str(caught.value)
    assert exchange_code(account="api-demo", **exchange).account_number == "813932"


def test_a_wrong_application_secret_is_refused_without_echoing_it(emulator):
    callback = approve(emulator, "api-demo", state="s")
    with pytest.raises(OAuthError) as caught:
        exchange_code(
            code=callback["code"],
            account="api-demo",
            application_id=emulator.config.application_id,
            application_secret="not-the-secret",
            redirect_uri=REDIRECT,
            token_url=token_url(emulator),
        )
    assert "not-the-secret" not in str(caught.value)
    assert callback["code"] not in str(caught.value)
