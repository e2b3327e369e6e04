"""The Dagster resource that says where alerts go and how often."""

from __future__ import annotations

import logging
from datetime import timedelta

import dagster as dg
from pydantic import Field

from poster_pipeline.alerts.notifiers import EmailNotifier, Notifier, WebhookNotifier
from poster_pipeline.alerts.targets import AlertConfigError, parse_recipients, parse_smtp_url

__all__ = ["AlertsResource"]


class AlertsResource(dg.ConfigurableResource):
    """Alert targets (e-mail, a chat webhook) and the de-duplication window.

    Unset targets are simply off: with none configured the alert sensors only log that
    nothing was sent. A target whose setting is invalid is logged as a warning and skipped,
    so a typo in one never silences the other. Pass the secrets as ``dg.EnvVar`` so the UI
    shows the variable's name, not the password or the webhook token.
    """

    email_to: str | None = Field(
        default=None, description="Comma-separated recipients (POSTER_ALERT_EMAIL_TO)."
    )
    smtp_url: str | None = Field(
        default=None,
        description="smtp://, smtp+starttls:// or smtps://[user:password@]host[:port]"
        "[?from=address] (POSTER_SMTP_URL).",
    )
    webhook_url: str | None = Field(
        default=None,
        description="Slack-compatible incoming webhook URL (POSTER_ALERT_WEBHOOK_URL).",
    )
    window_minutes: float = Field(
        default=60,
        ge=0,
        description="At most one alert per asset and partition in this many minutes.",
    )
    timeout_seconds: float = Field(
        default=10, gt=0, description="Timeout of each network operation of a notifier."
    )
    webhook_retries: int = Field(default=2, ge=0, description="Retries of a failed webhook POST.")
    dagster_url: str | None = Field(
        default=None, description="Base URL of the Dagster UI, to link alerts to the failed run."
    )

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def ui_link(self, path: str) -> str | None:
        """``path`` in the Dagster UI, or None without ``dagster_url``."""
        base = (self.dagster_url or "").strip().rstrip("/")
        return f"{base}{path}" if base else None

    def run_link(self, run_id: str) -> str | None:
        return self.ui_link(f"/runs/{run_id}")

    def notifiers(self, log: logging.Logger) -> list[Notifier]:
        """The configured notifiers; call once per evaluation (it logs why one is missing)."""
        notifiers: list[Notifier] = []
        email_to, smtp_url = _set(self.email_to), _set(self.smtp_url)
        if email_to and smtp_url:
            try:
                notifiers.append(
                    EmailNotifier(
                        parse_smtp_url(smtp_url),
                        parse_recipients(email_to),
                        timeout=self.timeout_seconds,
                    )
                )
            except AlertConfigError as exc:
                log.warning(f"e-mail alerts are off: {exc}")
        elif email_to or smtp_url:
            missing = "POSTER_SMTP_URL" if email_to else "POSTER_ALERT_EMAIL_TO"
            log.warning(f"e-mail alerts are off: {missing} is not set")
        webhook_url = _set(self.webhook_url)
        if webhook_url:
            try:
                notifiers.append(
                    WebhookNotifier(
                        webhook_url, timeout=self.timeout_seconds, retries=self.webhook_retries
                    )
                )
            except ValueError as exc:
                log.warning(f"webhook alerts are off: POSTER_ALERT_WEBHOOK_URL: {exc}")
        if not notifiers and not (email_to or smtp_url or webhook_url):
            log.info(
                "no alert target is configured (POSTER_ALERT_WEBHOOK_URL, or "
                "POSTER_ALERT_EMAIL_TO with POSTER_SMTP_URL): nothing is sent"
            )
        return notifiers


def _set(value: str | None) -> str | None:
    """An unset environment variable often arrives as an empty string."""
    return value.strip() if value and value.strip() else None
