"""Alembic environment: migrates the warehouse whose URL or connection the caller passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.migrate import VERSION_TABLE
from poster_pipeline.warehouse.schema import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_warehouse_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
        # Not Alembic's default `alembic_version`: Dagster's PostgreSQL storage keeps its own
        # there, and the warehouse may share a database with it.
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
