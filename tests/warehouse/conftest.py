from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from tests.databases import fresh_engine

_accounts = itertools.count(1)


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    """A migrated warehouse on each backend; tests isolate themselves by account name."""
    warehouse = fresh_engine(request.param, tmp_path_factory.mktemp("warehouse"))
    yield warehouse
    warehouse.dispose()


@pytest.fixture
def account() -> str:
    return f"cafe-{next(_accounts)}"
