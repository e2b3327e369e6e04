"""Absence from a list is evidence, not proof: a full sync asks Poster for a sample of the rows
that vanished before it marks them deleted (against an emulator with 3,000 ingredients)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from poster_pipeline.catalogue import entity
from poster_pipeline.emulator import EmulatorAccount, EmulatorConfig, start_in_thread
from poster_pipeline.orchestration.resources import PosterApiResource, WarehouseResource
from poster_pipeline.sync import SyncFailed, SyncServices, run_full_sync
from poster_pipeline.warehouse.schema import entity_table
from tests.databases import fresh_engine, postgres_url

ACCOUNT = EmulatorAccount.derive("big-cafe", 11, 700001)
INGREDIENTS, WORKSHOPS = entity("ingredients"), entity("workshops")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Iterator[tuple[str, WarehouseResource]]:
    config = EmulatorConfig(
        accounts=(ACCOUNT,), seed=11, sizes={"ingredients": 3000, "workshops": 4}
    )
    fresh_engine("postgresql", tmp_path_factory.mktemp("unused"), "_absence").dispose()
    warehouse = WarehouseResource(
        database_url=postgres_url("_absence"),
        data_dir=str(tmp_path_factory.mktemp("data")),
        token_key=Fernet.generate_key().decode(),
    )
    with start_in_thread(config) as emulator:
        warehouse.accounts(with_tokens=True).add(ACCOUNT.name, ACCOUNT.token, now=datetime.now(UTC))
        yield emulator.url, warehouse


def sync(big, spec, **kwargs):
    url, warehouse = big
    services = SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts(with_tokens=True).token,
        client_for=PosterApiResource(base_url=f"{url}/api", requests_per_second=1000).client,
    )
    return run_full_sync(
        services, spec, ACCOUNT.name, guard=warehouse.deletion_guard(spec), **kwargs
    )


def active(big, spec) -> int:
    table = entity_table(spec)
    with big[1].engine().connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(table.c.account == ACCOUNT.name, ~table.c.is_deleted)
        ).scalar_one()


def cut(big, spec, keep: int) -> None:
    requests.post(
        f"{big[0]}/control/faults",
        json={"method": spec.list_method, "kind": "truncate", "keep": keep, "times": 1},
        timeout=5,
    ).raise_for_status()


@pytest.mark.parametrize(
    ("spec", "keep"), [(INGREDIENTS, 2250), (INGREDIENTS, 1590), (WORKSHOPS, 1)]
)
def test_a_list_cut_short_is_refused_and_changes_nothing(big, spec, keep):
    sync(big, spec)
    before = active(big, spec)
    cut(big, spec, keep)
    with pytest.raises(SyncFailed, match="Poster still has") as refused:
        sync(big, spec)
    assert refused.value.refused is not None
    assert active(big, spec) == before


def test_a_real_deletion_of_a_few_rows_applies_in_one_sync_for_a_few_calls(big):
    result = sync(big, INGREDIENTS)
    listed = requests.get(f"{big[0]}/control/{ACCOUNT.name}/ingredients", timeout=5).json()
    live = [int(o["ingredient_id"]) for o in listed if str(o.get("delete", "0")) == "0"]
    for ingredient_id in live[:2]:
        requests.delete(
            f"{big[0]}/control/{ACCOUNT.name}/ingredients/{ingredient_id}", timeout=5
        ).raise_for_status()
    result = sync(big, INGREDIENTS)
    assert result.report.marked_deleted == 2
    assert result.api_calls <= 1 + 3  # the list and at most the sample


def test_allow_mass_delete_still_overrides(big):
    sync(big, WORKSHOPS)
    cut(big, WORKSHOPS, 1)
    result = sync(big, WORKSHOPS, allow_mass_delete=True)
    assert result.report.marked_deleted >= 1
