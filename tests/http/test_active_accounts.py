"""The cache of active account names: how often it queries, and what it does on failure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.http.active_accounts import ActiveAccounts
from poster_pipeline.warehouse.schema import accounts
from tests.http.deliveries import ACCOUNT, INACTIVE_ACCOUNT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loads(any_engine: Engine):
    """How many times the ``accounts`` table was read."""
    count = [0]

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM accounts" in statement:
            count[0] += 1

    sa.event.listen(any_engine, "before_cursor_execute", record)
    yield count
    sa.event.remove(any_engine, "before_cursor_execute", record)


def connect(engine: Engine, name: str) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(accounts).values(
                account=name,
                token_encrypted="x",
                auth_method="personal",
                connected_at=now,
                updated_at=now,
            )
        )


def test_only_active_accounts_are_listed(any_engine: Engine):
    names = ActiveAccounts(any_engine, ttl=5).current()
    assert names == {ACCOUNT} and INACTIVE_ACCOUNT not in names


def test_hits_are_served_from_the_cache_until_the_ttl(any_engine: Engine, loads):
    clock = Clock()
    cache = ActiveAccounts(any_engine, ttl=5, clock=clock)
    for _ in range(100):
        assert ACCOUNT in cache.current(ACCOUNT)
    assert loads[0] == 1
    clock.now += 5
    cache.current(ACCOUNT)
    assert loads[0] == 2


def test_a_miss_reloads_once_the_list_is_a_second_old(any_engine: Engine, loads):
    clock = Clock()
    cache = ActiveAccounts(any_engine, ttl=60, clock=clock)
    assert "new-cafe" not in cache.current("new-cafe")
    connect(any_engine, "new-cafe")
    clock.now += 0.5
    assert "new-cafe" not in cache.current("new-cafe")  # too soon: no query per miss
    assert loads[0] == 1
    clock.now += 0.5
    assert "new-cafe" in cache.current("new-cafe")
    assert loads[0] == 2


def test_a_failed_reload_keeps_the_previous_list(tmp_path, caplog):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE accounts (account TEXT, is_active BOOLEAN)"))
        conn.execute(sa.text("INSERT INTO accounts VALUES ('api-demo', 1)"))
    clock = Clock()
    cache = ActiveAccounts(engine, ttl=5, clock=clock)
    assert cache.current() == {"api-demo"}
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts RENAME TO gone"))
    clock.now += 10
    assert cache.current() == {"api-demo"}
    assert "previous list" in caplog.text


def test_a_list_that_never_loaded_is_an_error_not_an_empty_list(tmp_path):
    empty = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(sa.exc.OperationalError):
        ActiveAccounts(empty, ttl=5).current()
