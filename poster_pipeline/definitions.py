"""The Dagster code location: assembles what the other modules define, and nothing else."""

from __future__ import annotations

import logging
from datetime import timedelta

import dagster as dg

from poster_pipeline.orchestration.assets import entity_assets
from poster_pipeline.orchestration.automation import smart_sync_sensor
from poster_pipeline.orchestration.drain import events_applied_checks, webhook_drain_job
from poster_pipeline.orchestration.jobs import full_sync_job
from poster_pipeline.orchestration.resources import resources_for
from poster_pipeline.orchestration.schedules import nightly_full_sync_schedule
from poster_pipeline.settings import Settings
from sensors.accounts import account_partitions_sensor
from sensors.alerts import dead_webhook_events_alert, run_failure_alert, sync_silence_alert
from sensors.sync_requests import sync_requests_sensor
from sensors.webhooks import webhook_queue_sensor

settings = Settings.from_env()
if settings.refusal is not None:
    # `serve` and `demo` refuse to start; raising here would take the whole code location down
    # (no sensor, schedule or sync would run), so the refusal is logged as an error instead.
    logging.getLogger(__name__).error("%s", settings.refusal)
resources = resources_for(settings)


defs = dg.Definitions(
    # Runs are small (one entity, or ten in a row): one process per run, not per step, saves
    # a ~2 s process start per step and ~120 MB per concurrent step (docs/dagster-notes.md §8).
    executor=dg.in_process_executor,
    # Smart sync's condition reads the full-sync clocks in the configured warehouse.
    assets=entity_assets(
        timedelta(hours=settings.smart_sync_window_hours), warehouse=resources["warehouse"]
    ),
    asset_checks=events_applied_checks(),
    jobs=[full_sync_job, webhook_drain_job],
    schedules=[nightly_full_sync_schedule(settings.timezone)],
    sensors=[
        account_partitions_sensor,
        webhook_queue_sensor,
        smart_sync_sensor,
        run_failure_alert,
        dead_webhook_events_alert,
        sync_silence_alert(timedelta(hours=settings.smart_sync_window_hours)),
        sync_requests_sensor,
    ],
    resources=resources,
)
