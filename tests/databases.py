"""Test databases: a real PostgreSQL (never a mock) and a SQLite file.

CI exports ``POSTER_TEST_DATABASE_URL`` for a fresh database; locally the tests create
``poster_pipeline_test`` on 127.0.0.1:5432. PostgreSQL being unreachable fails the tests: a
storage test that skipped would prove nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Engine, make_url

from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.migrate import upgrade

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/poster_pipeline_test"


def postgres_url(suffix: str = "") -> str:
    """The test database's URL (``suffix`` names a sibling database), created if missing."""
    url = os.environ.get("POSTER_TEST_DATABASE_URL", LOCAL_URL)
    parsed = make_url(url)
    parsed = parsed.set(database=f"{parsed.database}{suffix}")
    url = parsed.render_as_string(hide_password=False)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parsed.database)))
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the storage tests and is unreachable: {exc}")
    return url


def reset(engine: Engine) -> None:
    """Drop everything in the database and migrate from empty."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        else:
            for table in reversed(sa.inspect(conn).get_table_names()):
                conn.execute(sa.text(f'DROP TABLE "{table}"'))
    upgrade(engine)


def fresh_engine(backend: str, tmp_dir: Path, suffix: str = "") -> Engine:
    """A migrated, empty warehouse; ``suffix`` picks a PostgreSQL database of its own."""
    if backend == "postgresql":
        engine = create_warehouse_engine(postgres_url(suffix))
    else:
        engine = create_warehouse_engine(f"sqlite:///{tmp_dir / 'warehouse.db'}")
    reset(engine)
    return engine
