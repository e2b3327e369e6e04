"""From request bytes to a Poster webhook: media types, JSON and form decoding, field checks.

Every way a body can be wrong ends in :class:`RequestRejected` with the 4xx to answer
(docs/design.md: any parse or decoding error is a 4xx, never a 500): 415 for a media type we do not
read, 400 for bytes that are not acceptable JSON or form data, 422 for a well-formed document
that is not a Poster webhook. The checks also keep out what PostgreSQL would refuse to store
(NUL characters, unpaired surrogates, NaN, integers beyond 64 bits), because a row that fails
to insert would otherwise surface as a 503 that Poster retries for two days.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request

from poster_pipeline.http.errors import RequestRejected
from poster_pipeline.poster.webhooks import WebhookEvent, WebhookPayloadError, parse_webhook

__all__ = [
    "FORM",
    "JSON",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MULTIPART",
    "check_values",
    "decode_json",
    "decode_urlencoded",
    "media_type",
    "read_payload",
    "webhook_from",
]

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_ACCEPTED = (JSON, FORM, MULTIPART)

#: Poster's hooks are flat (``data`` is a JSON-encoded string); a relay that decoded ``data``
#: adds a level or two. Anything deeper is not a webhook.
MAX_DEPTH = 16
#: A webhook has 8 fields; a form with many more is not one.
MAX_FIELDS = 64
_INT64 = range(-(2**63), 2**63)


def media_type(content_type: str | None) -> str:
    """The accepted media type a ``Content-Type`` header names (parameters such as ``charset``
    are ignored: JSON is UTF-8 by definition), JSON when there is none, or 415."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not kind:
        # Poster does not document its Content-Type and its official handler just decodes the
        # raw body; refusing would hold back every newer hook, so read it as JSON (the
        # signature still authenticates it, and a body that is not JSON gets 400).
        return JSON
    if kind not in _ACCEPTED:
        raise RequestRejected(415, f"unsupported Content-Type {kind!r}; send {JSON}")
    return kind


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON document strictly (no BOM, NaN or Infinity) and :func:`check_values`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(400, f"body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise RequestRejected(400, "body is not acceptable JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers over 4300 digits
        raise RequestRejected(400, f"body is not valid JSON: {exc}") from None
    check_values(value)
    return value


def decode_urlencoded(body: bytes) -> Any:
    """Decode a form body (UTF-8, percent-encoded or not); fields are kept as strings, so
    ``data`` stays the exact string that was signed.

    A body that starts with ``{`` is read as JSON: PHP's curl labels a raw string body
    ``application/x-www-form-urlencoded`` unless told otherwise, and such a body is never a
    meaningful form.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(400, f"body is not UTF-8 (byte {exc.start})") from None
    if text.lstrip().startswith("{"):
        return decode_json(body)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise RequestRejected(400, "form field is not percent-encoded UTF-8") from None
    except ValueError as exc:  # too many fields
        raise RequestRejected(400, f"form is not acceptable: {exc}") from None
    fields = dict(pairs)
    check_values(fields)
    return fields


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise RequestRejected(400, "body contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RequestRejected(400, "body contains an unpaired UTF-16 surrogate") from None


def check_values(root: Any) -> None:
    """Refuse decoded values PostgreSQL cannot store as text or ``jsonb``, or nested deeper
    than :data:`MAX_DEPTH` (400). Iterative, so a hostile body cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, Mapping | list):
            if depth > MAX_DEPTH:
                raise RequestRejected(400, f"body is nested deeper than {MAX_DEPTH} levels")
            if isinstance(value, Mapping):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def webhook_from(payload: Any) -> WebhookEvent:
    """The webhook a decoded body holds, or 422 naming the field at fault."""
    try:
        event = parse_webhook(payload)
    except WebhookPayloadError as exc:
        raise RequestRejected(422, str(exc)) from None
    # parse_webhook accepts any integer; the queue stores 64-bit ones.
    if event.object_id not in _INT64:
        raise RequestRejected(422, "field 'object_id' is out of the 64-bit range")
    # str.isdigit() also accepts digits int() cannot read ("²") and other scripts' digits.
    if not (event.time.isascii() and len(event.time) <= 18):
        raise RequestRejected(422, "field 'time' must be Unix seconds in ASCII digits")
    # hmac.compare_digest refuses non-ASCII text with a TypeError: not a signature at all.
    if not event.verify.isascii():
        raise RequestRejected(422, "field 'verify' must be a hexadecimal md5 digest")
    return event


async def read_payload(request: Request) -> Any:
    """The request's body decoded by its media type: JSON, a urlencoded or a multipart form.

    Starlette answers 400 itself for a broken multipart body or any file part."""
    kind = media_type(request.headers.get("content-type"))
    if kind != MULTIPART:
        body = await request.body()
        return decode_json(body) if kind == JSON else decode_urlencoded(body)
    async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
        fields: dict[str, str] = {}
        for name, value in form.items():
            if isinstance(value, UploadFile):  # pragma: no cover - max_files=0
                raise RequestRejected(422, f"field {name!r} must be text, not a file")
            fields[name] = value
    check_values(fields)
    return fields
