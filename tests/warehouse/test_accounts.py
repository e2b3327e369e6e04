"""Accounts: tokens encrypted at rest, never shown, decryptable only with the right key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.warehouse.accounts import (
    AccountError,
    AccountNumberMismatch,
    AccountNumberTaken,
    AccountStore,
    TokenCipher,
    load_or_create_key,
)
from poster_pipeline.warehouse.schema import accounts

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "813932:4164553abf6a31e6d0d1a2a3b4c5d6e7"


@pytest.fixture
def store(engine) -> AccountStore:
    return AccountStore(engine, TokenCipher(Fernet.generate_key().decode()))


def test_a_token_is_stored_encrypted_and_read_back(engine, store, account):
    added = store.add(account, TOKEN, now=NOW)
    assert added.account_number == "813932" and added.is_active
    assert added.auth_method == "personal"
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(accounts.c.token_encrypted).where(accounts.c.account == account)
        ).scalar_one()
    assert TOKEN not in stored and "4164553a" not in stored
    assert store.token(account) == TOKEN
    assert TOKEN not in repr(added)


def test_adding_again_replaces_the_token_and_reactivates(store, account):
    store.add(account, TOKEN, now=NOW)
    store.deactivate(account, now=NOW)
    with pytest.raises(AccountError, match="deactivated"):
        store.token(account)
    assert account not in [a.account for a in store.list(active_only=True)]
    store.add(account, "813932:" + "f" * 32, now=NOW, auth_method="oauth")
    assert store.token(account) == "813932:" + "f" * 32
    assert store.get(account).auth_method == "oauth"
    assert account in [a.account for a in store.list(active_only=True)]


def test_a_token_written_with_another_key_is_a_clear_error(engine, store, account):
    store.add(account, TOKEN, now=NOW)
    other = AccountStore(engine, TokenCipher(Fernet.generate_key().decode()))
    with pytest.raises(AccountError, match="POSTER_TOKEN_KEY") as caught:
        other.token(account)
    assert TOKEN not in str(caught.value)


def test_keys_rotate_the_first_encrypts_all_decrypt(engine, account):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    AccountStore(engine, TokenCipher(old)).add(account, TOKEN, now=NOW)
    assert AccountStore(engine, TokenCipher(f"{new},{old}")).token(account) == TOKEN


def test_bad_input_is_refused(store):
    with pytest.raises(ValueError, match="login"):
        store.add("no spaces please", TOKEN, now=NOW)
    with pytest.raises(ValueError, match="empty"):
        store.add("cafe-x", "  ", now=NOW)
    with pytest.raises(AccountError):
        store.token("never-added")
    with pytest.raises(ValueError, match="Fernet"):
        TokenCipher("not-a-key")


def test_the_demo_key_is_generated_once_and_private(tmp_path):
    key = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path) == key
    assert (tmp_path / "token.key").stat().st_mode & 0o077 == 0
    TokenCipher(key)


def test_a_token_of_another_restaurant_never_replaces_an_accounts_token(store, account):
    store.add(account, TOKEN, now=NOW)
    with pytest.raises(ValueError, match="account number 999999"):
        store.add(account, "999999:" + "b" * 32, now=NOW)
    assert store.token(account) == TOKEN


# --- connect (OAuth): the login and the number Poster vouched for --------------------------

LATER = NOW + timedelta(days=30)


def number_of(account: str) -> str:
    """A Poster account number no other test of the module uses (they share a warehouse)."""
    return str(700000 + int(account.rsplit("-", 1)[1]))


def utc(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their (UTC) zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def token_of(number: str, fill: str = "a") -> str:
    return f"{number}:{fill * 32}"


def test_connect_stores_an_oauth_account(store, account):
    number = number_of(account)
    connected = store.connect(account, token_of(number), account_number=number, now=NOW)
    assert (connected.account_number, connected.auth_method, connected.is_active) == (
        number,
        "oauth",
        True,
    )
    assert utc(connected.connected_at) == NOW and connected.time_zone is None
    assert store.token(account) == token_of(number)


def test_reconnecting_keeps_the_time_zone_and_the_connection_date(store, account):
    number = number_of(account)
    store.add(account, token_of(number), now=NOW, time_zone="Europe/Kyiv")
    store.deactivate(account, now=NOW)

    again = store.connect(account, token_of(number, "b"), account_number=number, now=LATER)

    assert (again.time_zone, utc(again.connected_at)) == ("Europe/Kyiv", NOW)
    assert (again.is_active, again.auth_method, again.account_number) == (True, "oauth", number)
    assert store.token(account) == token_of(number, "b")


def test_adding_again_without_a_time_zone_keeps_the_stored_one(store, account):
    number = number_of(account)
    store.add(account, token_of(number), now=NOW, time_zone="Europe/Kyiv")
    assert store.add(account, token_of(number, "b"), now=LATER).time_zone == "Europe/Kyiv"
    changed = store.add(account, token_of(number, "c"), now=LATER, time_zone="Asia/Kolkata")
    assert changed.time_zone == "Asia/Kolkata"
    assert store.token(account) == token_of(number, "c")


def test_an_unknown_time_zone_is_refused_and_nothing_is_stored(store, account):
    with pytest.raises(ValueError, match="'Europe/Kiev2' is not an IANA time zone"):
        store.add(account, token_of(number_of(account)), now=NOW, time_zone="Europe/Kiev2")
    with pytest.raises(AccountError):
        store.get(account)


def test_a_login_without_a_number_gets_posters(store, account):
    store.add(account, "a-token-without-its-number", now=NOW)
    assert store.get(account).account_number is None
    number = number_of(account)
    assert (
        store.connect(account, token_of(number), account_number=number, now=LATER).account_number
        == number
    )


def test_a_login_keeps_its_account_number(store, account):
    number = number_of(account)
    store.add(account, token_of(number), now=NOW, time_zone="UTC")
    other = str(int(number) + 500000)  # no test's number

    with pytest.raises(AccountNumberMismatch, match=f"{account} is account number {number}"):
        store.connect(account, token_of(other), account_number=other, now=LATER)

    assert store.token(account) == token_of(number)
    assert store.get(account).auth_method == "personal"


def test_a_number_connected_under_another_active_login_is_refused(store, account):
    number = number_of(account)
    first = f"{account}-first"
    store.connect(first, token_of(number), account_number=number, now=NOW)

    with pytest.raises(AccountNumberTaken, match=f"already connected as {first}") as caught:
        store.connect(account, token_of(number, "b"), account_number=number, now=LATER)
    assert caught.value.other_account == first
    assert token_of(number, "b") not in str(caught.value)
    with pytest.raises(AccountError):
        store.get(account)  # nothing stored
    assert store.token(first) == token_of(number)

    # Once the old login is deactivated, the restaurant may connect under the new one.
    store.deactivate(first, now=LATER)
    store.connect(account, token_of(number, "b"), account_number=number, now=LATER)
    assert store.token(account) == token_of(number, "b")


@pytest.mark.parametrize("token", ["999999:" + "c" * 32, "c" * 32, ""])
def test_connect_refuses_a_token_that_is_not_of_the_number(store, account, token):
    number = number_of(account)
    with pytest.raises(ValueError) as caught:
        store.connect(account, token, account_number=number, now=NOW)
    assert "c" * 32 not in str(caught.value)
    with pytest.raises(AccountError):
        store.get(account)
