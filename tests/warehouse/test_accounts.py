"""Accounts: tokens encrypted at rest, never shown, decryptable only with the right key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.warehouse.accounts import (
    AccountError,
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
