"""The shipped Dagster instance files load, and the production one stores runs in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_postgres import PostgresRunStorage

from tests.databases import postgres_url

ROOT = Path(__file__).resolve().parents[2]


@dg.asset
def probe() -> int:
    return 1


def test_the_local_instance_file_keeps_runs_in_sqlite(tmp_path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_storage.__class__.__name__ == "SqliteRunStorage"
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"


def test_the_production_instance_file_keeps_runs_in_postgres(tmp_path, monkeypatch):
    dagster_db = sa.engine.make_url(postgres_url("_dagster")).set(drivername="postgresql+psycopg2")
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_db.render_as_string(hide_password=False))
    (tmp_path / "dagster.yaml").write_text((ROOT / "deploy/postgres/dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        result = dg.materialize([probe], instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None


def test_the_production_instance_file_needs_its_url(monkeypatch):
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    with pytest.raises(Exception, match="DAGSTER_PG_URL"):
        dg.DagsterInstance.from_config(str(ROOT / "deploy" / "postgres"))
