"""The account sensor turns every active connected account into a partition."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
from cryptography.fernet import Fernet

from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import WarehouseResource
from sensors.accounts import account_partitions_sensor
from tests.databases import fresh_engine

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_new_active_accounts_are_added_and_known_or_inactive_ones_are_not(tmp_path):
    fresh_engine("sqlite", tmp_path).dispose()
    warehouse = WarehouseResource(data_dir=str(tmp_path), token_key=Fernet.generate_key().decode())
    store = warehouse.accounts(with_tokens=True)
    for name in ("cafe-a", "cafe-b", "cafe-c"):
        store.add(name, "1:" + "a" * 32, now=NOW)
    store.deactivate("cafe-c", now=NOW)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, ["cafe-a"])

    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    result = account_partitions_sensor(context)
    assert isinstance(result, dg.SensorResult)
    [request] = result.dynamic_partitions_requests
    assert request.partitions_def_name == ACCOUNTS
    assert list(request.partition_keys) == ["cafe-b"]

    instance.add_dynamic_partitions(ACCOUNTS, ["cafe-b"])
    assert isinstance(account_partitions_sensor(context), dg.SkipReason)
