"""The notifiers against real local targets: an SMTP server and an HTTP sink."""

from __future__ import annotations

import logging

import pytest

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.alerts.notifiers import (
    EmailNotifier,
    NotificationError,
    WebhookNotifier,
    deliver,
)
from poster_pipeline.alerts.targets import parse_smtp_url
from tests.alerts.conftest import SMTP_PASSWORD, SMTP_USER, smtp_server

ALERT = Alert(
    subject="poster-pipeline: ingredients sync failed for account api-demo",
    account="api-demo",
    entities=("ingredients",),
    error="ingredients sync of account api-demo failed: Poster answered HTTP 500",
    run_id="0a1b2c3d-run",
    tags={"dagster/partition": "api-demo", "poster/sync": "full"},
)
RECIPIENTS = ("ops@example.com", "owner@example.com")
log = logging.getLogger("tests.alerts")


def email(url: str, **options) -> EmailNotifier:
    return EmailNotifier(parse_smtp_url(url), RECIPIENTS, timeout=5, **options)


def webhook(url: str) -> WebhookNotifier:
    return WebhookNotifier(url, timeout=5, retries=2, backoff_factor=0.01)


def assert_names_the_failure(text: str) -> None:
    for expected in ("api-demo", "ingredients", "Poster answered HTTP 500", "0a1b2c3d-run"):
        assert expected in text


# --- e-mail ---------------------------------------------------------------------------------


def test_email_reaches_every_recipient(inbox):
    email(f"smtp://127.0.0.1:{inbox.port}?from=alerts@example.com").send(ALERT)

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == list(RECIPIENTS)
    [message] = inbox.messages
    assert message["Subject"] == ALERT.subject
    assert message["To"] == "ops@example.com, owner@example.com"
    body = message.get_content()
    assert_names_the_failure(body)
    assert "dagster/partition=api-demo" in body


def test_email_logs_in_with_the_url_credentials():
    with smtp_server(auth=True, auth_require_tls=False) as inbox:
        email(f"smtp://alerts%40example.com:{SMTP_PASSWORD}@127.0.0.1:{inbox.port}").send(ALERT)
    assert inbox.logins == [(SMTP_USER, SMTP_PASSWORD)]
    [message] = inbox.messages
    assert message["From"] == SMTP_USER  # the user name is an address: it is the sender


def test_a_rejected_login_is_reported_without_the_password():
    with smtp_server(auth=True, auth_require_tls=False) as inbox:
        notifier = email(f"smtp://alerts%40example.com:wrong-pa55@127.0.0.1:{inbox.port}")
        with pytest.raises(NotificationError, match="SMTPAuthenticationError") as raised:
            notifier.send(ALERT)
    assert "wrong-pa55" not in str(raised.value)
    assert "alerts%40example.com:***@127.0.0.1" in str(raised.value)
    assert inbox.envelopes == []


def test_email_over_starttls(certificate):
    with smtp_server(
        tls_context=certificate.server_context(), require_starttls=True, auth=True
    ) as inbox:
        url = f"smtp+starttls://alerts%40example.com:{SMTP_PASSWORD}@127.0.0.1:{inbox.port}"
        email(url, ssl_context=certificate.client_context()).send(ALERT)
    assert inbox.logins == [(SMTP_USER, SMTP_PASSWORD)]
    assert_names_the_failure(inbox.messages[0].get_content())


def test_email_over_implicit_tls(certificate):
    with smtp_server(ssl_context=certificate.server_context()) as inbox:
        url = f"smtps://127.0.0.1:{inbox.port}?from=alerts@example.com"
        email(url, ssl_context=certificate.client_context()).send(ALERT)
    assert_names_the_failure(inbox.messages[0].get_content())


def test_an_untrusted_certificate_is_refused(certificate):
    with (
        smtp_server(ssl_context=certificate.server_context()) as inbox,
        pytest.raises(NotificationError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        email(f"smtps://127.0.0.1:{inbox.port}").send(ALERT)  # system trust store only
    assert inbox.envelopes == []


def test_an_unreachable_relay_is_a_notification_error(refused_port):
    notifier = email(f"smtp://bot:hunter2@127.0.0.1:{refused_port}")
    with pytest.raises(NotificationError, match="ConnectionRefusedError") as raised:
        notifier.send(ALERT)
    assert "hunter2" not in str(raised.value)


# --- webhook --------------------------------------------------------------------------------


def test_webhook_posts_slack_compatible_json(sink):
    webhook(sink.url).send(ALERT)

    [request] = sink.received
    assert request["path"] == "/hooks/T000/B000/tOkEn"
    assert request["content_type"] == "application/json"
    assert_names_the_failure(request["json"]["text"])
    fields = request["json"]["poster_pipeline"]
    assert fields["account"] == "api-demo"
    assert fields["entities"] == ["ingredients"]
    assert fields["run_id"] == "0a1b2c3d-run"


def test_webhook_retries_server_errors(sink):
    sink.statuses = [500, 503]
    webhook(sink.url).send(ALERT)
    assert len(sink.received) == 3


def test_webhook_gives_up_after_its_retries(sink):
    sink.statuses = [502, 502, 502]
    with pytest.raises(NotificationError, match="HTTP 502"):
        webhook(sink.url).send(ALERT)
    assert len(sink.received) == 3


def test_webhook_client_errors_are_not_retried_and_hide_the_token(sink):
    sink.statuses = [403]
    with pytest.raises(NotificationError, match="HTTP 403: invalid_token") as raised:
        webhook(sink.url).send(ALERT)
    assert len(sink.received) == 1
    assert "tOkEn" not in str(raised.value)
    assert "http://127.0.0.1" in str(raised.value)


def test_an_unreachable_webhook_hides_the_token(refused_port):
    with pytest.raises(NotificationError, match="ConnectionError") as raised:
        webhook(f"http://127.0.0.1:{refused_port}/hooks/T000/B000/tOkEn").send(ALERT)
    assert "tOkEn" not in str(raised.value)


def test_a_webhook_url_must_be_http():
    with pytest.raises(ValueError, match="not an http"):
        WebhookNotifier("ftp://example.com/hook")


# --- several targets ------------------------------------------------------------------------


def test_a_dead_relay_does_not_stop_the_webhook(sink, refused_port, caplog):
    notifiers = [email(f"smtp://bot:hunter2@127.0.0.1:{refused_port}"), webhook(sink.url)]
    with caplog.at_level(logging.INFO, logger=log.name):
        delivery = deliver(ALERT, notifiers, log)

    assert delivery.delivered
    assert delivery.sent == (notifiers[1].name,)
    assert delivery.failed == (notifiers[0].name,)
    assert len(sink.received) == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "not delivered" in warning.getMessage()
    assert "hunter2" not in caplog.text


def test_a_dead_webhook_does_not_stop_the_email(inbox, refused_port, caplog):
    notifiers = [
        webhook(f"http://127.0.0.1:{refused_port}/hooks/tOkEn"),
        email(f"smtp://127.0.0.1:{inbox.port}"),
    ]
    with caplog.at_level(logging.WARNING, logger=log.name):
        delivery = deliver(ALERT, notifiers, log)

    assert delivery.sent == (notifiers[1].name,)
    assert len(inbox.envelopes) == 1
    assert "tOkEn" not in caplog.text


def test_a_broken_notifier_never_raises(sink, caplog):
    class Broken:
        name = "broken"

        def send(self, alert: Alert) -> None:
            raise RuntimeError("a bug")

    with caplog.at_level(logging.WARNING, logger=log.name):
        delivery = deliver(ALERT, [Broken(), webhook(sink.url)], log)
    assert delivery.failed == ("broken",)
    assert len(sink.received) == 1
    assert "RuntimeError: a bug" in caplog.text


def test_nothing_delivered_when_every_target_fails(refused_port):
    delivery = deliver(ALERT, [email(f"smtp://127.0.0.1:{refused_port}")], log)
    assert not delivery.delivered
