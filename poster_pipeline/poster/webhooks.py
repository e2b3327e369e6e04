"""Poster webhook payloads: parsing and the `verify` signature.

Poster signs a webhook with ``md5(account;object;object_id;action;[data;]time;secret)`` where
``secret`` is the application's ``application_secret`` (docs/poster-api.md §3.5: the prose omits
``time`` but the official example code, the PHP SDK and production receivers include it).
``data`` takes part only when the key is present and not null, and must be the exact string
that arrived: re-serialising the JSON it contains would change the bytes and the digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "data_id",
    "parse_webhook",
    "sign",
    "verify",
]

_REQUIRED = ("account", "object", "object_id", "action", "time", "verify")


class WebhookPayloadError(ValueError):
    """The body is not a Poster webhook: a receiver answers 400/422, never 500."""


class WebhookSignatureError(ValueError):
    """The ``verify`` field does not match: a receiver answers 401."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One Poster webhook, as delivered.

    ``data`` is kept as the raw string Poster sent (it is part of the signature); ``time`` is
    Poster's send time in Unix seconds, as it arrived (a decimal string on the wire).
    """

    account: str
    object: str
    object_id: int
    action: str
    time: str
    verify: str
    account_number: str | None = None
    data: str | None = None

    def signed_parts(self) -> list[str]:
        """The fields in signature order, without the secret."""
        parts = [self.account, self.object, str(self.object_id), self.action]
        if self.data is not None:
            parts.append(self.data)
        parts.append(self.time)
        return parts


def _text(payload: Mapping[str, Any], field: str) -> str:
    value = payload[field]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WebhookPayloadError(f"field {field!r} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise WebhookPayloadError(f"field {field!r} is empty")
    return text


def parse_webhook(payload: Mapping[str, Any]) -> WebhookEvent:
    """Validate a decoded webhook body and return it typed.

    Accepts ``object_id`` as an int or a decimal string (Poster sends an int; some relays
    stringify it) and ``time`` as a string or an int. Raises :class:`WebhookPayloadError` naming
    the first problem found.
    """
    if not isinstance(payload, Mapping):
        raise WebhookPayloadError("webhook body must be a JSON object")
    missing = [field for field in _REQUIRED if field not in payload or payload[field] is None]
    if missing:
        raise WebhookPayloadError(f"missing field(s): {', '.join(missing)}")

    raw_id = payload["object_id"]
    if isinstance(raw_id, bool) or not isinstance(raw_id, int | str):
        raise WebhookPayloadError("field 'object_id' must be an integer")
    try:
        object_id = int(raw_id)
    except ValueError:
        raise WebhookPayloadError(f"field 'object_id' is not an integer: {raw_id!r}") from None
    if str(object_id) != str(raw_id).strip():
        raise WebhookPayloadError(f"field 'object_id' is not a plain integer: {raw_id!r}")

    time = _text(payload, "time")
    if not time.isdigit():
        raise WebhookPayloadError(f"field 'time' must be Unix seconds, got {time!r}")

    data = payload.get("data")
    if data is not None and not isinstance(data, str):
        # Poster sends `data` as a JSON-encoded string (docs/poster-api.md §3.2). A relay that
        # decoded it cannot be verified byte for byte; the compact re-encoding is the best guess.
        data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    account_number = payload.get("account_number")
    return WebhookEvent(
        account=_text(payload, "account"),
        object=_text(payload, "object"),
        object_id=object_id,
        action=_text(payload, "action"),
        time=time,
        verify=_text(payload, "verify").lower(),
        account_number=None if account_number is None else str(account_number),
        data=data,
    )


def data_id(event: WebhookEvent, name: str) -> int | None:
    """The id ``data.<name>`` of a webhook (a ``stock`` hook's ``storage_id``), or None when
    ``data`` is absent, not a JSON object, or has no integer under ``name``."""
    if event.data is None:
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):  # "²" is a digit to isdigit(), not to int()
        return None
    number = int(text)
    return number if number < 2**63 else None  # what a BIGINT column holds


def _digest(parts: list[str], secret: str) -> str:
    return hashlib.md5(";".join([*parts, secret]).encode("utf-8")).hexdigest()


def sign(
    *,
    account: str,
    object: str,
    object_id: int | str,
    action: str,
    time: int | str,
    secret: str,
    data: str | None = None,
) -> str:
    """The ``verify`` value Poster would send for these fields (used by the emulator and tests)."""
    parts = [account, object, str(object_id), action]
    if data is not None:
        parts.append(data)
    parts.append(str(time))
    return _digest(parts, secret)


def verify(event: WebhookEvent, secret: str) -> None:
    """Raise :class:`WebhookSignatureError` unless ``event.verify`` matches, in constant time."""
    if not secret:
        raise WebhookSignatureError("no application secret is configured")
    expected = _digest(event.signed_parts(), secret)
    if not hmac.compare_digest(expected, event.verify):
        raise WebhookSignatureError(
            f"bad signature for {event.object}:{event.object_id} {event.action} "
            f"from account {event.account}"
        )
