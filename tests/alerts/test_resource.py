"""AlertsResource: which notifiers the settings make, and what it says when they make none."""

from __future__ import annotations

import logging

from poster_pipeline.alerts.notifiers import EmailNotifier, WebhookNotifier
from poster_pipeline.alerts.resource import AlertsResource

log = logging.getLogger("tests.alerts.resource")


def records(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_nothing_configured_is_a_no_op_that_says_so_once(caplog):
    with caplog.at_level(logging.INFO, logger=log.name):
        assert AlertsResource().notifiers(log) == []
        assert AlertsResource(email_to="", smtp_url=" ", webhook_url="").notifiers(log) == []
    assert len(records(caplog, logging.INFO)) == 2  # one per call (per evaluation)
    assert "no alert target is configured" in caplog.text
    assert records(caplog, logging.WARNING) == []


def test_every_configured_target_gets_a_notifier():
    alerts = AlertsResource(
        email_to="ops@example.com, owner@example.com",
        smtp_url="smtp+starttls://bot:hunter2@mail.example.com?from=alerts@example.com",
        webhook_url="https://hooks.slack.com/services/T0/B0/XXXX",
        timeout_seconds=3,
    )
    email, webhook = alerts.notifiers(log)
    assert isinstance(email, EmailNotifier) and isinstance(webhook, WebhookNotifier)
    assert email.recipients == ("ops@example.com", "owner@example.com")
    assert email.timeout == 3
    assert "hunter2" not in email.name
    assert "XXXX" not in webhook.name


def test_half_an_email_configuration_is_a_warning(caplog):
    with caplog.at_level(logging.INFO, logger=log.name):
        assert AlertsResource(email_to="ops@example.com").notifiers(log) == []
    assert records(caplog, logging.WARNING) == ["e-mail alerts are off: POSTER_SMTP_URL is not set"]


def test_a_bad_smtp_url_does_not_silence_the_webhook(caplog):
    alerts = AlertsResource(
        email_to="ops@example.com",
        smtp_url="smpt://bot:hunter2@mail.example.com",
        webhook_url="https://chat.example.com/hooks/abc",
    )
    with caplog.at_level(logging.INFO, logger=log.name):
        [webhook] = alerts.notifiers(log)
    assert isinstance(webhook, WebhookNotifier)
    [warning] = records(caplog, logging.WARNING)
    assert "unknown scheme 'smpt'" in warning
    assert "hunter2" not in caplog.text


def test_a_bad_webhook_url_is_a_warning(caplog):
    with caplog.at_level(logging.INFO, logger=log.name):
        assert AlertsResource(webhook_url="hooks.example.com/abc").notifiers(log) == []
    [warning] = records(caplog, logging.WARNING)
    assert warning.startswith("webhook alerts are off: POSTER_ALERT_WEBHOOK_URL")


def test_window_and_run_link():
    alerts = AlertsResource(window_minutes=15, dagster_url="http://dagster.local:3000/")
    assert alerts.window.total_seconds() == 900
    assert alerts.run_link("abc") == "http://dagster.local:3000/runs/abc"
    assert AlertsResource().run_link("abc") is None
