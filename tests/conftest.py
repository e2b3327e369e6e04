"""Shared fixtures: a Poster API emulator per test session, and a client for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from poster_pipeline.emulator import (
    EmulatorAccount,
    EmulatorConfig,
    RunningEmulator,
    start_in_thread,
)
from poster_pipeline.poster.client import ClientSettings, PosterClient

SEED = 7


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    """An emulator with two restaurants; tests that change data create their own objects."""
    config = EmulatorConfig(
        accounts=(
            EmulatorAccount.derive("api-demo", SEED, 813932),
            EmulatorAccount.derive("second-cafe", SEED),
        ),
        seed=SEED,
        application_id="test-app",
        application_secret="test-secret",
    )
    with start_in_thread(config) as running:
        yield running


@pytest.fixture
def control(emulator: RunningEmulator) -> Iterator[requests.Session]:
    """A session for the emulator's control API; clears faults and counters around each test."""
    with requests.Session() as session:
        session.delete(f"{emulator.url}/control/faults").raise_for_status()
        session.delete(f"{emulator.url}/control/calls").raise_for_status()
        yield session
        session.delete(f"{emulator.url}/control/faults").raise_for_status()


def fast_settings(api_url: str, **overrides: float) -> ClientSettings:
    """Client settings for tests: quick backoff and timeouts, a high rate."""
    values = {
        "base_url": api_url,
        "requests_per_second": 1000.0,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "max_retries": 3,
        "backoff_factor": 0.01,
        "backoff_jitter": 0.01,
        "backoff_max": 0.1,
        **overrides,
    }
    return ClientSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def demo_account(emulator: RunningEmulator) -> EmulatorAccount:
    return emulator.config.accounts[0]


@pytest.fixture
def client(emulator: RunningEmulator, demo_account: EmulatorAccount) -> Iterator[PosterClient]:
    with PosterClient(
        demo_account.token, account=demo_account.name, settings=fast_settings(emulator.api_url)
    ) as poster:
        yield poster
