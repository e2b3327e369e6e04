"""Dagster resources: the I/O that assets and sensors ask for by parameter."""

from __future__ import annotations

import dagster as dg

from poster_pipeline.poster.client import DEFAULT_API_URL, ClientSettings, PosterClient

__all__ = ["PosterApiResource"]


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
