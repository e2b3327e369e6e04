"""The resources: unconfigured, they behave as the dataclasses they configure do by default;
configured, they hold what the settings say, secrets by their variable's name."""

from __future__ import annotations

from cryptography.fernet import Fernet

from poster_pipeline.catalogue import entity
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
    resources_for,
)
from poster_pipeline.poster.client import ClientSettings
from poster_pipeline.settings import Settings
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


SECRETS = {
    "POSTER_DATABASE_URL": "postgresql+psycopg://pipeline:db-pa55@db/warehouse",
    "POSTER_TOKEN_KEY": Fernet.generate_key().decode(),
    "POSTER_SMTP_URL": "smtps://alerts:smtp-pa55@mail.example:465",
    "POSTER_ALERT_WEBHOOK_URL": "https://hooks.example/services/T0/B0/hook-token",
}


def test_settings_from_the_environment_reach_the_resources_by_variable_name(monkeypatch, tmp_path):
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("POSTER_API_URL", "http://127.0.0.1:8765/api")
    monkeypatch.setenv("POSTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("POSTER_SUPPLIES_WINDOW_DAYS", "10")
    resources = resources_for(Settings.from_env())
    # What Dagster shows of a resource's configuration names the variables, never the secrets.
    shown = repr(resources)
    assert not [value for value in SECRETS.values() if value in shown]
    warehouse = resources["warehouse"].process_config_and_initialize()
    assert warehouse.url == SECRETS["POSTER_DATABASE_URL"]
    assert warehouse.token_key == SECRETS["POSTER_TOKEN_KEY"]
    assert (warehouse.data_dir, warehouse.supplies_window_days) == (str(tmp_path), 10)
    alerts = resources["alerts"].process_config_and_initialize()
    assert (alerts.smtp_url, alerts.webhook_url) == (
        SECRETS["POSTER_SMTP_URL"],
        SECRETS["POSTER_ALERT_WEBHOOK_URL"],
    )
    assert resources["poster_api"].base_url == "http://127.0.0.1:8765/api"


def test_settings_made_in_code_reach_the_resources_as_they_are(monkeypatch, tmp_path):
    """The demo and tests build Settings themselves: their values, not the environment's."""
    monkeypatch.setenv("POSTER_DATABASE_URL", "postgresql+psycopg://other@db/elsewhere")
    monkeypatch.delenv("POSTER_TOKEN_KEY", raising=False)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/warehouse.db",
        token_key=SECRETS["POSTER_TOKEN_KEY"],
        data_dir=tmp_path,
    )
    warehouse = resources_for(settings)["warehouse"].process_config_and_initialize()
    assert warehouse.url == f"sqlite:///{tmp_path}/warehouse.db"
    assert warehouse.token_key == SECRETS["POSTER_TOKEN_KEY"]


def test_unset_secrets_stay_unset(monkeypatch, tmp_path):
    for variable in SECRETS:
        monkeypatch.delenv(variable, raising=False)
    resources = resources_for(Settings(data_dir=tmp_path))
    warehouse = resources["warehouse"].process_config_and_initialize()
    assert (warehouse.database_url, warehouse.token_key) == (None, None)
    assert warehouse.url.startswith("sqlite:")


def test_alerts_link_to_the_failed_run_in_the_dagster_ui_of_poster_dagster_url(monkeypatch):
    """docs/deploy.md: POSTER_DAGSTER_URL is for the dashboard's and the alerts' links."""
    monkeypatch.setenv("POSTER_DAGSTER_URL", "http://ops.example:3000/")
    alerts = resources_for(Settings.from_env())["alerts"]
    assert alerts.run_link("abc123") == "http://ops.example:3000/runs/abc123"
