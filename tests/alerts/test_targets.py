"""The alert settings: SMTP URL forms, recipients, and that secrets never show."""

from __future__ import annotations

import pytest

from poster_pipeline.alerts.targets import (
    AlertConfigError,
    SmtpSecurity,
    parse_recipients,
    parse_smtp_url,
    redact_url,
    webhook_label,
)


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("smtp://relay.internal", SmtpSecurity.PLAIN, 25),
        ("smtp+starttls://mail.example.com", SmtpSecurity.STARTTLS, 587),
        ("smtps://mail.example.com", SmtpSecurity.TLS, 465),
        ("SMTPS://mail.example.com:2465", SmtpSecurity.TLS, 2465),
        ("smtp://127.0.0.1:2525", SmtpSecurity.PLAIN, 2525),
    ],
)
def test_scheme_chooses_security_and_default_port(url, security, port):
    settings = parse_smtp_url(url)
    assert (settings.security, settings.port) == (security, port)
    assert settings.username is None and settings.password is None
    assert settings.sender == "poster-pipeline@localhost"


def test_credentials_are_percent_decoded_and_the_user_address_is_the_sender():
    settings = parse_smtp_url("smtp+starttls://bot%40example.com:p%40ss%3Aword@mail.example.com")
    assert settings.host == "mail.example.com"
    assert (settings.username, settings.password) == ("bot@example.com", "p@ss:word")
    assert settings.sender == "bot@example.com"


def test_from_parameter_sets_the_sender():
    settings = parse_smtp_url("smtps://apikey:xyz@smtp.sendgrid.net?from=alerts@example.com")
    assert settings.sender == "alerts@example.com"
    assert settings.username == "apikey"


def test_the_password_never_shows():
    url = "smtp+starttls://bot:hunter2@mail.example.com:587"
    assert redact_url(url) == "smtp+starttls://bot:***@mail.example.com:587"
    settings = parse_smtp_url(url)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.redacted
    assert redact_url("smtp://relay:25") == "smtp://relay:25"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://user:hunter2@mail.example.com", "unknown scheme"),
        ("smtp://user:hunter2@", "names no host"),
        ("smtp://user:hunter2@mail.example.com?sender=x@example.com", "unknown parameters"),
        ("smtp://user:hunter2@mail.example.com:notaport", "not a valid URL"),
    ],
)
def test_bad_urls_are_explained_without_the_password(url, problem):
    with pytest.raises(AlertConfigError, match=problem) as raised:
        parse_smtp_url(url)
    assert "hunter2" not in str(raised.value)
    assert "POSTER_SMTP_URL" in str(raised.value)


def test_recipients_are_a_comma_separated_list():
    assert parse_recipients(" a@example.com, b@example.com ,") == ("a@example.com", "b@example.com")
    with pytest.raises(AlertConfigError, match="names no address"):
        parse_recipients(" , ")
    with pytest.raises(AlertConfigError, match="not e-mail addresses"):
        parse_recipients("a@example.com, ops")


def test_a_webhook_url_shows_only_scheme_and_host():
    label = webhook_label("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    assert label == "https://hooks.slack.com/…"
    assert webhook_label("http://127.0.0.1:8065/hooks/abc") == "http://127.0.0.1:8065/…"
