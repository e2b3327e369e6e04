"""The gate to the warehouse: deadlines, bounded threads, and what a failure turns into."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.http.database import DatabaseGate, DatabaseUnavailable


@pytest.fixture
def engine(tmp_path) -> Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'gate.db'}")


def test_a_call_runs_off_the_event_loop(engine: Engine):
    gate = DatabaseGate(engine, timeout=5, concurrency=2)

    async def main() -> str:
        return await gate.run(lambda e: threading.current_thread().name)

    assert asyncio.run(main()).startswith("receiver-warehouse")
    gate.close()


def test_a_call_past_the_deadline_is_unavailable_and_a_queued_one_never_runs(engine: Engine):
    gate = DatabaseGate(engine, timeout=0.2, concurrency=1)
    release = threading.Event()
    ran: list[str] = []

    def stuck(_: Engine) -> None:
        ran.append("stuck")
        release.wait(10)

    async def main() -> None:
        with pytest.raises(DatabaseUnavailable):
            await gate.run(stuck)  # abandoned, still holding the only thread
        with pytest.raises(DatabaseUnavailable):
            await gate.run(lambda e: ran.append("queued"))  # waited for a thread in vain

    asyncio.run(main())
    release.set()
    gate.close(wait=True)  # the abandoned call ends before we look
    assert ran == ["stuck"]


def test_database_errors_become_unavailable_and_are_logged_once(engine: Engine, caplog):
    gate = DatabaseGate(engine, timeout=5, concurrency=2)

    def failing(e: Engine) -> None:
        with e.connect() as conn:
            conn.execute(sa.text("SELECT * FROM missing_table"))

    async def main() -> int:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable):
                await gate.run(failing)
        return await gate.run(lambda e: 1)

    with caplog.at_level(logging.INFO, logger="poster_pipeline.http"):
        assert asyncio.run(main()) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "unavailable" in m]) == 1
    assert "no such table: missing_table" in messages[0]
    assert "SELECT" not in messages[0]  # the driver's message, not the statement
    assert messages[-1] == "the warehouse answers again"
    gate.close()


def test_other_errors_are_not_hidden(engine: Engine):
    gate = DatabaseGate(engine, timeout=5, concurrency=1)

    async def main() -> None:
        await gate.run(lambda e: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        asyncio.run(main())
    gate.close()
