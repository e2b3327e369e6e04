"""The resources, unconfigured, behave as the dataclasses they configure do by default."""

from __future__ import annotations

from poster_pipeline.catalogue import entity
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.poster.client import ClientSettings
from poster_pipeline.sync.drain import DrainLimits
from poster_pipeline.warehouse.guard import DeletionGuard
from poster_pipeline.warehouse.queue import RetryPolicy


def test_an_unconfigured_poster_api_talks_as_the_client_does_by_default():
    with PosterApiResource().client("1:" + "a" * 32, account="cafe") as client:
        assert client.settings == ClientSettings()


def test_an_unconfigured_queue_retries_as_the_retry_policy_does_by_default():
    assert WebhookQueueResource().retry_policy() == RetryPolicy()


def test_an_unconfigured_drain_differs_from_drain_limits_only_where_it_means_to():
    limits = WebhookQueueResource().drain_limits()
    defaults = DrainLimits()
    assert (limits.single_fetch_limit, limits.lock_wait, limits.idle_for) == (
        defaults.single_fetch_limit,
        defaults.lock_wait,
        defaults.idle_for,
    )
    # A code location's drain serves every account and keeps taking claims for a while.
    assert limits.workers > defaults.workers
    assert limits.take_for > defaults.take_for


def test_an_unconfigured_warehouse_guards_full_syncs_as_the_guard_does_by_default():
    assert WarehouseResource().deletion_guard(entity("ingredients")) == DeletionGuard()
