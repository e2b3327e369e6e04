"""Failure alerts: a failed sync, a dead webhook event, or an entity that nothing has fully
synced for too long (silence) reaches a person by e-mail or chat."""

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.alerts.dead_events import (
    RETRY_COMMAND,
    DeadEvent,
    DeadEventsCursor,
    dead_events_alert,
    find_newly_dead,
)
from poster_pipeline.alerts.notifiers import (
    Delivery,
    EmailNotifier,
    NotificationError,
    Notifier,
    WebhookNotifier,
    deliver,
)
from poster_pipeline.alerts.resource import AlertsResource
from poster_pipeline.alerts.run_failure import FailedRun, RunAlertOutcome, notify_run_failure
from poster_pipeline.alerts.silence import SilenceCursor, silence_threshold
from poster_pipeline.alerts.silence_notify import SilenceOutcome, check_silence
from poster_pipeline.alerts.targets import AlertConfigError, parse_smtp_url, redact_url
from poster_pipeline.warehouse.alerts_sent import (
    AlertClaim,
    alerts_sent,
    claim_alert,
    release_alert,
)

__all__ = [
    "RETRY_COMMAND",
    "Alert",
    "AlertClaim",
    "AlertConfigError",
    "AlertsResource",
    "DeadEvent",
    "DeadEventsCursor",
    "Delivery",
    "EmailNotifier",
    "FailedRun",
    "NotificationError",
    "Notifier",
    "RunAlertOutcome",
    "SilenceCursor",
    "SilenceOutcome",
    "WebhookNotifier",
    "alerts_sent",
    "check_silence",
    "claim_alert",
    "dead_events_alert",
    "deliver",
    "find_newly_dead",
    "notify_run_failure",
    "parse_smtp_url",
    "redact_url",
    "release_alert",
    "silence_threshold",
]
