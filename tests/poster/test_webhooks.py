"""Webhook parsing and the `verify` signature, checked against vectors built from the rule.

The rule (docs/poster-api.md §3.5): md5 of account;object;object_id;action;[data;]time;secret,
lowercase hex; `data` only when present, as the exact string received.
"""

import hashlib
import json

import pytest

from poster_pipeline.poster.webhooks import (
    WebhookPayloadError,
    WebhookSignatureError,
    parse_webhook,
    sign,
    verify,
)

SECRET = "c0ffee0123456789abcdef0123456789"


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def documented_payload() -> dict:
    payload = {
        "account": "api-demo",
        "account_number": "813932",
        "object": "ingredient",
        "object_id": 91,
        "action": "changed",
        "time": "1518794257",
    }
    payload["verify"] = md5(f"api-demo;ingredient;91;changed;1518794257;{SECRET}")
    return payload


def payload_with_data() -> dict:
    data = json.dumps(
        {"type": 1, "element_id": 91, "storage_id": 1, "value_relative": -2.5, "value_absolute": 7}
    )
    payload = {
        "account": "mykava6",
        "object": "stock",
        "object_id": "16776",
        "action": "changed",
        "time": "1688722229",
        "data": data,
    }
    payload["verify"] = md5(f"mykava6;stock;16776;changed;{data};1688722229;{SECRET}")
    return payload


def test_a_documented_payload_verifies():
    event = parse_webhook(documented_payload())
    verify(event, SECRET)
    assert (event.object_id, event.time, event.data) == (91, "1518794257", None)
    assert event.account_number == "813932"


def test_a_payload_with_data_verifies_over_the_raw_string():
    payload = payload_with_data()
    event = parse_webhook(payload)
    verify(event, SECRET)
    assert event.object_id == 16776
    assert event.data == payload["data"]


def test_sign_reproduces_the_rule_with_and_without_data():
    without = documented_payload()
    assert without["verify"] == sign(
        account="api-demo",
        object="ingredient",
        object_id=91,
        action="changed",
        time=1518794257,
        secret=SECRET,
    )
    with_data = payload_with_data()
    assert with_data["verify"] == sign(
        account="mykava6",
        object="stock",
        object_id=16776,
        action="changed",
        time="1688722229",
        data=with_data["data"],
        secret=SECRET,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account", "other-account"),
        ("object", "product"),
        ("object_id", 92),
        ("action", "removed"),
        ("time", "1518794258"),
        ("verify", "0" * 32),
    ],
)
def test_any_tampered_field_fails_verification(field, value):
    payload = documented_payload()
    payload[field] = value
    with pytest.raises(WebhookSignatureError):
        verify(parse_webhook(payload), SECRET)


def test_tampered_or_reserialised_data_fails_verification():
    payload = payload_with_data()
    payload["data"] = json.dumps(json.loads(payload["data"]), separators=(",", ":"))
    with pytest.raises(WebhookSignatureError):
        verify(parse_webhook(payload), SECRET)


def test_a_dropped_data_field_fails_verification():
    payload = payload_with_data()
    del payload["data"]
    with pytest.raises(WebhookSignatureError):
        verify(parse_webhook(payload), SECRET)


def test_a_wrong_or_missing_secret_fails_verification():
    event = parse_webhook(documented_payload())
    with pytest.raises(WebhookSignatureError):
        verify(event, "another-secret")
    with pytest.raises(WebhookSignatureError):
        verify(event, "")


def test_uppercase_hex_signature_is_accepted():
    payload = documented_payload()
    payload["verify"] = payload["verify"].upper()
    verify(parse_webhook(payload), SECRET)


def test_the_signature_error_does_not_reveal_the_secret_or_the_expected_digest():
    payload = documented_payload()
    payload["verify"] = "f" * 32
    with pytest.raises(WebhookSignatureError) as caught:
        verify(parse_webhook(payload), SECRET)
    assert SECRET not in str(caught.value)
    assert documented_payload()["verify"] not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"object_id": None}, "missing"),
        ({"verify": None}, "missing"),
        ({"object_id": "12a"}, "object_id"),
        ({"object_id": 1.5}, "object_id"),
        ({"object_id": True}, "object_id"),
        ({"time": "yesterday"}, "time"),
        ({"account": ""}, "account"),
        ({"action": ["changed"]}, "action"),
    ],
)
def test_malformed_payloads_are_refused_with_the_field_named(change, message):
    payload = {**documented_payload(), **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(WebhookPayloadError, match=message):
        parse_webhook(payload)


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(WebhookPayloadError):
        parse_webhook(["account"])  # type: ignore[arg-type]
