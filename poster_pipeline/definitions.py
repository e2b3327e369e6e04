"""The Dagster code location: assembles what the other modules define, and nothing else."""

from __future__ import annotations

import dagster as dg

from poster_pipeline.orchestration.assets import entity_assets
from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.resources import (
    PosterApiResource,
    WarehouseResource,
    WebhookQueueResource,
)
from poster_pipeline.settings import Settings
from sensors.accounts import account_partitions_sensor
from sensors.webhooks import webhook_queue_sensor

settings = Settings.from_env()


def _secret(name: str, value: str | None) -> dg.EnvVar | None:
    """Pass secrets as EnvVar so the UI shows the variable's name, never its value."""
    return dg.EnvVar(name) if value else None


defs = dg.Definitions(
    assets=entity_assets(),
    jobs=[full_sync_job],
    sensors=[account_partitions_sensor, webhook_queue_sensor],
    resources={
        "poster_api": PosterApiResource(base_url=settings.api_url),
        "warehouse": WarehouseResource(
            database_url=_secret("POSTER_DATABASE_URL", settings.database_url),
            data_dir=str(settings.data_dir),
            token_key=_secret("POSTER_TOKEN_KEY", settings.token_key),
        ),
        "webhook_queue": WebhookQueueResource(),
    },
)
