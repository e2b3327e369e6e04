"""Notifiers: deliver an :class:`Alert` by e-mail (SMTP) or to a chat webhook.

A notifier raises :class:`NotificationError` with a message safe to log (no password, no
webhook token); :func:`deliver` tries every notifier, so a dead mail relay never keeps the
chat message from going out, and never lets an exception escape into the sensor.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.alerts.targets import SmtpSecurity, SmtpSettings, webhook_label

__all__ = [
    "Delivery",
    "EmailNotifier",
    "NotificationError",
    "Notifier",
    "WebhookNotifier",
    "deliver",
]


class NotificationError(Exception):
    """A target did not take the alert; the message names the target, never its secret."""


class Notifier(Protocol):
    @property
    def name(self) -> str:
        """The target as it may be logged (no secret)."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise :class:`NotificationError`."""
        ...


class EmailNotifier:
    """Sends alerts over SMTP: plain (a local relay), STARTTLS, or implicit TLS.

    One connection per alert (alerts are rare, a pooled connection would only go stale).
    ``timeout`` bounds each socket operation, so an unreachable relay costs at most a few
    timeouts of a sensor evaluation. ``ssl_context`` defaults to the system's trust store
    with hostname checking; pass one to trust a private CA.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        recipients: Sequence[str],
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("an e-mail notifier needs at least one recipient")
        self.settings = settings
        self.recipients = tuple(recipients)
        self.timeout = timeout
        self._ssl_context = ssl_context

    @property
    def name(self) -> str:
        return f"e-mail to {', '.join(self.recipients)} via {self.settings.redacted}"

    def message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = alert.subject
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2])
        message.set_content(alert.text())
        return message

    def send(self, alert: Alert) -> None:
        settings = self.settings
        context = self._ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        try:
            if settings.security is SmtpSecurity.TLS:
                smtp = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=self.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
            with smtp:
                if settings.security is SmtpSecurity.STARTTLS:
                    smtp.starttls(context=context)
                if settings.username is not None:
                    smtp.login(settings.username, settings.password or "")
                smtp.send_message(self.message(alert))
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
            raise NotificationError(f"{self.name}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _HideWebhookTokens(logging.Filter):
    """urllib3 logs the path of a request it retries (``Retrying (...) after connection broken
    by ...: /services/T0/B0/XXXX``) at WARNING; a webhook's path is its token."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = scrubbed = record.getMessage()
            for secret in sorted(self.secrets, key=len, reverse=True):  # /hook/x before /hook
                scrubbed = scrubbed.replace(secret, "/…")
            if scrubbed != message:
                record.msg, record.args = scrubbed, ()
        return True


_hide_webhook_tokens = _HideWebhookTokens()


# Answers worth a retry: rate limiting, and a gateway or server hiccup.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class WebhookNotifier:
    """POSTs Slack-compatible JSON (``{"text": ...}``) to an incoming-webhook URL.

    Slack, Mattermost, Rocket.Chat and Discord's ``/slack`` endpoint post ``text``; the
    structured copy under ``poster_pipeline`` is for receivers that want fields (the chat
    services ignore keys they do not know). Failed connections, 429 and 5xx answers are retried
    ``retries`` times with exponential backoff by urllib3; a POST is retried even though it
    is not idempotent, because a duplicate chat message is better than a lost alert.
    ``Retry-After`` is not honoured: a rate limit of minutes must not hold the sensor.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff_factor: float = 0.5,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {webhook_label(url)}")
        self._url = url
        self._secret = parts.path + (f"?{parts.query}" if parts.query else "")
        if self._secret not in ("", "/"):
            _hide_webhook_tokens.secrets.add(self._secret)
            logging.getLogger("urllib3.connectionpool").addFilter(_hide_webhook_tokens)
        self.timeout = timeout
        self.retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=frozenset({"POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            respect_retry_after_header=False,
            raise_on_status=False,
        )

    @property
    def name(self) -> str:
        return f"webhook {webhook_label(self._url)}"

    def payload(self, alert: Alert) -> dict[str, object]:
        return {"text": alert.text(), "poster_pipeline": alert.fields()}

    def send(self, alert: Alert) -> None:
        with requests.Session() as session:
            adapter = HTTPAdapter(max_retries=self.retry)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            try:
                response = session.post(
                    self._url, json=self.payload(alert), timeout=(self.timeout, self.timeout)
                )
            except requests.RequestException as exc:
                # urllib3 puts the request path (the webhook's token) into its messages.
                raise NotificationError(f"{self.name}: {self._scrub(_describe(exc))}") from None
        if not response.ok:
            body = self._scrub(response.text.strip()[:200])
            raise NotificationError(f"{self.name} answered HTTP {response.status_code}: {body}")

    def _scrub(self, text: str) -> str:
        text = text.replace(self._url, webhook_label(self._url))
        return text.replace(self._secret, "/…") if self._secret not in ("", "/") else text


@dataclass(frozen=True)
class Delivery:
    """Which targets took an alert (``sent``) and which did not (``failed``), by name."""

    sent: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.sent)


def deliver(alert: Alert, notifiers: Sequence[Notifier], log: logging.Logger) -> Delivery:
    """Send ``alert`` through every notifier; a failing one is logged as a warning and the
    others still run. Never raises: an alerting bug must not take the sensor down with it."""
    sent: list[str] = []
    failed: list[str] = []
    for notifier in notifiers:
        try:
            notifier.send(alert)
        except NotificationError as exc:
            log.warning(f"alert {alert.subject!r} not delivered: {exc}")
            failed.append(notifier.name)
        except Exception as exc:
            log.warning(
                f"alert {alert.subject!r} not delivered: {notifier.name} raised "
                f"{type(exc).__name__}: {exc}"
            )
            failed.append(notifier.name)
        else:
            log.info(f"alert {alert.subject!r} sent: {notifier.name}")
            sent.append(notifier.name)
    return Delivery(tuple(sent), tuple(failed))
