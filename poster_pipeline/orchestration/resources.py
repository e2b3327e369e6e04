"""Dagster resources: the I/O that assets and sensors ask for by parameter."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from poster_pipeline.poster.client import DEFAULT_API_URL, ClientSettings, PosterClient
from poster_pipeline.settings import DEFAULT_DATA_DIR
from poster_pipeline.warehouse.accounts import AccountStore, cipher_for
from poster_pipeline.warehouse.engine import create_warehouse_engine, default_database_url
from poster_pipeline.warehouse.guard import DeletionGuard

__all__ = ["PosterApiResource", "WarehouseResource"]


class PosterApiResource(dg.ConfigurableResource):
    """Makes :class:`PosterClient`s for connected accounts.

    One resource serves every account: the token differs per account (it comes from the
    accounts table), the transport settings do not. Tests point ``base_url`` at the emulator.
    """

    base_url: str = DEFAULT_API_URL
    requests_per_second: float = 5.0
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_retries: int = 4

    def client(self, token: str, account: str) -> PosterClient:
        return PosterClient(
            token,
            account=account,
            settings=ClientSettings(
                base_url=self.base_url,
                requests_per_second=self.requests_per_second,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_retries=self.max_retries,
            ),
        )


@cache
def _engine(url: str) -> Engine:
    """One pooled engine per URL and process (runs, sensors and the CLI each have their own)."""
    return create_warehouse_engine(url)


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse database and the accounts stored in it.

    ``database_url`` unset means the embedded SQLite file under ``data_dir``; ``token_key``
    unset means a key generated in ``data_dir`` (fine for a demo, not for production).
    """

    database_url: str | None = None
    data_dir: str = DEFAULT_DATA_DIR
    token_key: str | None = None
    mass_delete_max_share: float = 0.5
    mass_delete_min_rows: int = 20

    @property
    def url(self) -> str:
        return self.database_url or default_database_url(Path(self.data_dir))

    def engine(self) -> Engine:
        return _engine(self.url)

    def accounts(self) -> AccountStore:
        return AccountStore(self.engine(), cipher_for(self.token_key, Path(self.data_dir)))

    def deletion_guard(self) -> DeletionGuard:
        return DeletionGuard(self.mass_delete_max_share, self.mass_delete_min_rows)
