"""What the alert settings mean: the SMTP URL, the recipient list, the webhook URL.

Parsing is pure and happens before anything connects, so a typo is reported as a typo.
Every message that shows a target goes through :func:`redact_url` or :func:`webhook_label`:
an SMTP URL carries a password, and a Slack or Mattermost webhook URL *is* a secret (anyone
who has it can post to the channel), so only its scheme and host are ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

__all__ = [
    "AlertConfigError",
    "SmtpSecurity",
    "SmtpSettings",
    "parse_recipients",
    "parse_smtp_url",
    "redact_url",
    "webhook_label",
]

DEFAULT_SENDER = "poster-pipeline@localhost"


class AlertConfigError(ValueError):
    """An alert setting cannot be used; the message names the setting and never a secret."""


class SmtpSecurity(Enum):
    """How the SMTP connection is protected, chosen by the URL scheme."""

    PLAIN = "smtp"  # no TLS (a local relay); port 25
    STARTTLS = "smtp+starttls"  # upgrade after connecting; port 587 (submission)
    TLS = "smtps"  # TLS from the first byte; port 465

    @property
    def default_port(self) -> int:
        return {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[self.value]


@dataclass(frozen=True)
class SmtpSettings:
    security: SmtpSecurity
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    redacted: str  # the URL as it may be shown: password replaced

    def __repr__(self) -> str:  # the dataclass default would print the password
        return f"SmtpSettings({self.redacted!r}, sender={self.sender!r})"


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; safe for logs and errors."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def webhook_label(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host only (the path holds the token)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}/…"


def parse_smtp_url(url: str) -> SmtpSettings:
    """Parse ``smtp[+starttls|s]://[user:password@]host[:port][?from=address]``.

    User and password are percent-decoded (write ``@`` in a user name as ``%40``). Without
    ``from``, the sender is the user name when it is an address, else ``poster-pipeline@localhost``;
    most relays insist on a sender of their own domain, so set ``from``.
    """
    redacted = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise AlertConfigError(f"POSTER_SMTP_URL {redacted} is not a valid URL: {exc}") from None
    try:
        security = SmtpSecurity(parts.scheme.lower())
    except ValueError:
        schemes = ", ".join(f"{s.value}://" for s in SmtpSecurity)
        raise AlertConfigError(
            f"POSTER_SMTP_URL {redacted}: unknown scheme {parts.scheme!r} (use one of {schemes})"
        ) from None
    if not parts.hostname:
        raise AlertConfigError(f"POSTER_SMTP_URL {redacted} names no host")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"from"})
    if unknown:
        raise AlertConfigError(f"POSTER_SMTP_URL {redacted}: unknown parameters {unknown}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    sender = query["from"][-1] if "from" in query else None
    if sender is None:
        sender = username if username and "@" in username else DEFAULT_SENDER
    return SmtpSettings(
        security=security,
        host=parts.hostname,
        port=port or security.default_port,
        username=username,
        password=password,
        sender=sender,
        redacted=redacted,
    )


def parse_recipients(value: str) -> tuple[str, ...]:
    """The addresses of a comma-separated list (``POSTER_ALERT_EMAIL_TO``), blanks dropped."""
    recipients = tuple(address.strip() for address in value.split(",") if address.strip())
    if not recipients:
        raise AlertConfigError("POSTER_ALERT_EMAIL_TO names no address")
    bad = [address for address in recipients if "@" not in address]
    if bad:
        raise AlertConfigError(f"POSTER_ALERT_EMAIL_TO: not e-mail addresses: {bad}")
    return recipients
