"""Failure alerts: a failed sync run, webhook events that died, or an account's entity that
nothing has fully synced for too long (silence) reach a person.

The sensors ask ``AlertsResource`` for the configured targets once per evaluation; with none
configured they log that and do nothing else (no warehouse access). The logic lives in
``poster_pipeline.alerts``; these functions only wire Dagster's context to it.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from poster_pipeline.alerts import (
    AlertsResource,
    DeadEventsCursor,
    FailedRun,
    SilenceCursor,
    check_silence,
    dead_events_alert,
    deliver,
    find_newly_dead,
    notify_run_failure,
    silence_threshold,
)
from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.orchestration.resources import WarehouseResource

NO_TARGET = "no alert target is configured"
#: Silence is measured in hours: a check every 10 minutes is prompt enough and costs one
#: small read of ``accounts`` and ``sync_status``.
SILENCE_CHECK_SECONDS = 600


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
    description="Sends an alert (e-mail, chat webhook) when a run of this code location fails: "
    "the account, the entities, the error and the run. At most one alert per asset and "
    "partition per window (AlertsResource.window_minutes); the next one counts the suppressed.",
)
def run_failure_alert(
    context: dg.RunFailureSensorContext, alerts: AlertsResource, warehouse: WarehouseResource
) -> None:
    """Returns nothing, whatever happened, and logs the outcome instead: Dagster evaluates the
    failed runs of a tick one by one and stops at the first that returns a value, and a
    ``SkipReason`` next to the other runs' results fails the whole tick (seen in the daemon)."""
    notifiers = alerts.notifiers(context.log)
    if not notifiers:
        return
    run = FailedRun.from_context(context)
    notify_run_failure(
        run,
        notifiers=notifiers,
        engine=warehouse.engine(),
        window=alerts.window,
        now=datetime.now(UTC),
        log=context.log,
        link=alerts.run_link(run.run_id),
    )


@dg.sensor(
    name="dead_webhook_events_alert",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends one alert summarising the webhook events that became dead (retries used "
    "up) since the last alert, per account and entity, with the command that retries them.",
)
def dead_webhook_events_alert(
    context: dg.SensorEvaluationContext, alerts: AlertsResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """The cursor is a watermark on ``updated_at`` plus the recently reported events, not the
    largest id: an older event often dies after a newer one (see
    ``poster_pipeline.alerts.dead_events``). If no target takes the alert, the cursor stays,
    and the next evaluation tries again."""
    notifiers = alerts.notifiers(context.log)
    if not notifiers:
        return dg.SkipReason(NO_TARGET)
    try:
        cursor = DeadEventsCursor.from_json(context.cursor)
    except ValueError as exc:
        context.log.warning(f"{exc}; reporting every dead event once more")
        cursor = DeadEventsCursor()
    dead, advanced = find_newly_dead(warehouse.engine(), cursor)
    if not dead:
        return dg.SensorResult(
            skip_reason="no webhook event died since the last alert", cursor=advanced.to_json()
        )
    delivery = deliver(dead_events_alert(dead), notifiers, context.log)
    if not delivery.delivered:
        return dg.SkipReason(f"{len(dead)} dead events: no alert target took the alert")
    return dg.SensorResult(
        skip_reason=f"alerted {len(dead)} dead webhook events", cursor=advanced.to_json()
    )


def sync_silence_alert(smart_sync_window: timedelta) -> dg.SensorDefinition:
    """The silence sensor for smart sync's ``smart_sync_window`` (``POSTER_SMART_SYNC_HOURS``):
    a pair is silent after twice that without a successful full sync (see
    ``poster_pipeline.alerts.silence``). A factory, like the assets, so the window is the one
    the code location gives smart sync, not a second copy."""
    threshold = silence_threshold(smart_sync_window)
    hours = f"{threshold.total_seconds() / 3600:g} h"

    @dg.sensor(
        name="sync_silence_alert",
        minimum_interval_seconds=SILENCE_CHECK_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Sends one alert listing the active accounts' entities that had no "
        f"successful full sync for {hours} (twice the smart-sync window), e.g. because nothing "
        f"runs; each pair at most once per {hours} while silent, again after it recovered.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, alerts: AlertsResource, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        """The cursor holds what the grace periods need (accounts seen becoming active, when
        each entity first appeared); the alert state is in ``alerts_sent``."""
        notifiers = alerts.notifiers(context.log)
        if not notifiers:
            return dg.SkipReason(NO_TARGET)
        try:
            cursor = SilenceCursor.from_json(context.cursor)
        except ValueError as exc:
            context.log.warning(f"{exc}; starting over")
            cursor = SilenceCursor()
        outcome = check_silence(
            warehouse.engine(),
            notifiers,
            cursor=cursor,
            entities=[spec.name for spec in ENTITIES],
            now=datetime.now(UTC),
            threshold=threshold,
            log=context.log,
            # Where to see whether the sensors and the schedule that sync are running.
            link=alerts.ui_link("/automation"),
        )
        return dg.SensorResult(skip_reason=outcome.summary(), cursor=outcome.cursor.to_json())

    return _sensor
