from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from poster_pipeline.orchestration.resources import WarehouseResource
from tests.databases import fresh_engine, postgres_url


@pytest.fixture(scope="module")
def warehouse(emulator, tmp_path_factory) -> WarehouseResource:
    """A fresh PostgreSQL warehouse with the emulator's accounts connected."""
    fresh_engine("postgresql", tmp_path_factory.mktemp("unused")).dispose()
    resource = WarehouseResource(
        database_url=postgres_url(),
        data_dir=str(tmp_path_factory.mktemp("data")),
        token_key=Fernet.generate_key().decode(),
    )
    for account in emulator.config.accounts:
        resource.accounts(with_tokens=True).add(account.name, account.token, now=datetime.now(UTC))
    return resource
