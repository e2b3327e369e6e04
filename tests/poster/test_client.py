"""The Poster client against the emulator: every entity, typing, errors, retries, throttle."""

from __future__ import annotations

import logging
import socket
import time
import traceback
from decimal import Decimal

import pytest
import requests

from poster_pipeline.catalogue import ENTITIES, FieldType
from poster_pipeline.poster import (
    PosterApiError,
    PosterAuthError,
    PosterClient,
    PosterConnectionError,
    PosterError,
    PosterNotFoundError,
    PosterPlanRestrictionError,
    PosterRateLimitError,
    PosterServerError,
    PosterTimeoutError,
)
from tests.conftest import fast_settings

PYTHON_TYPES = {
    FieldType.INTEGER: int,
    FieldType.MONEY: int,
    FieldType.FLAG: bool,
    FieldType.QUANTITY: Decimal,
    FieldType.TEXT: str,
}


def add_fault(control: requests.Session, emulator, **fault) -> None:
    control.post(f"{emulator.url}/control/faults", json=fault).raise_for_status()


def calls_to(control: requests.Session, emulator, method: str) -> int:
    counts = control.get(f"{emulator.url}/control/calls").json()
    return counts["by_method"].get(method, 0)


@pytest.mark.parametrize("spec", ENTITIES, ids=lambda e: e.name)
def test_every_entity_lists_typed_records(client, spec):
    # Stock is listed one storage at a time; its rows get the storage from the call.
    scope = {spec.scope: 1} if spec.scope else {}
    records = client.fetch_list(spec, **scope)
    if spec.scope:
        assert {r.values[spec.scope] for r in records} == {1}
        assert spec.scope not in records[0].raw  # the raw row stays as Poster sent it
    assert records, f"the emulator serves some {spec.name}"
    assert len({r.id for r in records}) == len(records)
    for record in records:
        assert record.entity == spec.name
        assert isinstance(record.id, int)
        assert record.values[spec.key] == record.id
        for field in spec.fields:
            value = record.values[field.name]
            if value is not None and field.type in PYTHON_TYPES:
                assert type(value) is PYTHON_TYPES[field.type], (field.name, value)


@pytest.mark.parametrize("spec", [e for e in ENTITIES if e.single_method], ids=lambda e: e.name)
def test_single_getters_agree_with_the_list_whatever_the_wire_types(client, spec):
    listed = next(r for r in client.fetch_list(spec) if not r.is_deleted)
    single = client.fetch_one(spec, listed.id)
    assert single.id == listed.id
    # Lists send strings and getters ints (docs/poster-api.md §1.7); typed, they are the same.
    assert type(listed.raw[spec.key]) is str
    for name in spec.field_names:
        if name in listed.raw and name in single.raw:
            assert single.values[name] == listed.values[name], name


def test_named_methods_cover_each_entity(client, demo_account):
    assert (
        client.fetch_list("suppliers")
        and client.fetch_list("ingredients")
        and client.fetch_list("products")
    )
    assert client.fetch_list("ingredient_categories") and client.fetch_list("product_categories")
    assert client.fetch_list("workshops") and client.fetch_list("storages")
    storage = client.fetch_list("storages")[0]
    assert (
        client.fetch_one("storages", storage.id).values["storage_name"]
        == storage.values["storage_name"]
    )
    assert (
        client.fetch_one("ingredients", client.fetch_list("ingredients")[0].id).entity
        == "ingredients"
    )
    assert client.fetch_one("products", client.fetch_list("products")[0].id).entity == "products"
    assert client.fetch_one("workshops", client.fetch_list("workshops")[0].id).entity == "workshops"
    category = client.fetch_list("product_categories")[0]
    assert client.fetch_one("product_categories", category.id).id == category.id
    ingredient_category = client.fetch_list("ingredient_categories")[0]
    assert (
        client.fetch_one("ingredient_categories", ingredient_category.id).id
        == ingredient_category.id
    )


def test_suppliers_have_no_single_getter(client):
    with pytest.raises(ValueError, match="no single getter"):
        client.fetch_one("suppliers", 1)


def test_deleted_workshops_stay_listed_with_their_flag(client):
    workshops = client.fetch_list("workshops")
    assert any(w.is_deleted for w in workshops), "the demo data has a deleted workshop"
    assert any(not w.is_deleted for w in workshops)


def test_a_missing_object_raises_not_found(client):
    with pytest.raises(PosterNotFoundError):
        client.fetch_one("products", 987654321)
    with pytest.raises(PosterNotFoundError):
        client.fetch_one("storages", 987654321)


def test_calls_are_counted_by_method(client):
    client.fetch_list("workshops")
    client.fetch_list("workshops")
    client.fetch_list("storages")
    assert client.stats.calls == {"menu.getWorkshops": 2, "storage.getStorages": 1}
    assert client.stats.total == 3


def test_a_wrong_token_is_an_auth_error_and_is_not_retried(emulator, control):
    bad = PosterClient(
        "813932:" + "0" * 32, account="api-demo", settings=fast_settings(emulator.api_url)
    )
    with pytest.raises(PosterAuthError) as caught:
        bad.fetch_list("workshops")
    assert caught.value.code == 11
    assert "menu.getWorkshops" in str(caught.value) and "api-demo" in str(caught.value)
    assert calls_to(control, emulator, "menu.getWorkshops") == 1


@pytest.mark.parametrize(
    ("code", "form", "kind"),
    [
        (10, "object", PosterAuthError),
        (12, "int", PosterAuthError),
        (20, "object", PosterAuthError),
        (54, "object", PosterAuthError),
        (700, "object", PosterPlanRestrictionError),
        (32, "int", PosterNotFoundError),
        (42, "int", PosterApiError),
        (42, "string", PosterApiError),
    ],
)
def test_error_bodies_are_typed_and_never_retried(client, emulator, control, code, form, kind):
    add_fault(control, emulator, method="menu.getWorkshops", kind="error", code=code, form=form)
    with pytest.raises(kind):
        client.fetch_list("workshops")
    assert calls_to(control, emulator, "menu.getWorkshops") == 1
    assert client.stats.retries == 0


def test_server_errors_are_retried_until_they_pass(client, emulator, control):
    add_fault(
        control, emulator, method="storage.getStorages", kind="http_status", status=503, times=2
    )
    assert client.fetch_list("storages")
    assert client.stats.retries == 2
    assert calls_to(control, emulator, "storage.getStorages") == 3


def test_persistent_server_errors_fail_after_the_retry_bound(client, emulator, control):
    add_fault(control, emulator, method="storage.getStorages", kind="http_status", status=500)
    with pytest.raises(PosterServerError) as caught:
        client.fetch_list("storages")
    assert caught.value.retryable
    assert calls_to(control, emulator, "storage.getStorages") == client.settings.max_retries + 1


def test_rate_limiting_is_retried_after_retry_after(client, emulator, control):
    add_fault(control, emulator, method="menu.getWorkshops", kind="rate_limit", times=1)
    assert client.fetch_list("workshops")
    assert calls_to(control, emulator, "menu.getWorkshops") == 2


def test_persistent_rate_limiting_is_a_rate_limit_error(emulator, control, demo_account):
    settings = fast_settings(emulator.api_url, max_retries=1)
    add_fault(control, emulator, method="menu.getWorkshops", kind="rate_limit")
    with (
        PosterClient(demo_account.token, settings=settings) as poster,
        pytest.raises(PosterRateLimitError),
    ):
        poster.fetch_list("workshops")


def test_a_hanging_answer_times_out_and_is_retried(emulator, control, demo_account):
    settings = fast_settings(emulator.api_url, read_timeout=0.3)
    add_fault(control, emulator, method="menu.getWorkshops", kind="hang", seconds=5, times=1)
    with PosterClient(demo_account.token, settings=settings) as poster:
        assert poster.fetch_list("workshops")
        assert poster.stats.retries == 1


def test_a_persistent_hang_is_a_timeout_error(emulator, control, demo_account):
    settings = fast_settings(emulator.api_url, read_timeout=0.2, max_retries=1)
    add_fault(control, emulator, method="menu.getWorkshops", kind="hang", seconds=5)
    with (
        PosterClient(demo_account.token, settings=settings) as poster,
        pytest.raises(PosterTimeoutError) as caught,
    ):
        poster.fetch_list("workshops")
    assert caught.value.retryable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_api_is_a_connection_error():
    settings = fast_settings(f"http://127.0.0.1:{closed_port()}/api")
    with (
        PosterClient("813932:" + "a" * 32, settings=settings) as poster,
        pytest.raises(PosterConnectionError) as caught,
    ):
        poster.fetch_list("workshops")
    assert caught.value.retryable
    assert "813932" in str(caught.value)


def test_the_throttle_holds_the_configured_rate(emulator, demo_account):
    settings = fast_settings(emulator.api_url, requests_per_second=20.0)
    with PosterClient(demo_account.token, settings=settings) as poster:
        started = time.monotonic()
        for _ in range(11):
            poster.fetch_list("storages")
        elapsed = time.monotonic() - started
    # 11 calls at 20/s need at least 10 intervals of 50 ms; faster would break the rate.
    assert elapsed >= 0.5


def test_no_token_appears_in_any_log_line_or_error(emulator, control, demo_account, caplog):
    caplog.set_level(logging.DEBUG)
    token = demo_account.token
    secret_part = token.split(":", 1)[1]
    errors: list[PosterError] = []
    scenarios = [
        (fast_settings(emulator.api_url), dict(kind="http_status", status=502)),
        (
            fast_settings(emulator.api_url, read_timeout=0.2, max_retries=1),
            dict(kind="hang", seconds=3),
        ),
        (fast_settings(emulator.api_url), dict(kind="error", code=11, form="object")),
        (fast_settings(emulator.api_url), dict(kind="rate_limit")),
        (fast_settings(f"http://127.0.0.1:{closed_port()}/api"), None),
    ]
    for settings, fault in scenarios:
        control.delete(f"{emulator.url}/control/faults")
        if fault:
            add_fault(control, emulator, method="menu.getWorkshops", **fault)
        with PosterClient(token, account="api-demo", settings=settings) as poster:
            try:
                poster.fetch_list("workshops")
            except PosterError as exc:
                errors.append(exc)
    assert len(errors) == len(scenarios)
    assert "Retrying" in caplog.text or "retry" in caplog.text.lower(), "urllib3 logged retries"
    assert secret_part not in caplog.text
    for exc in errors:
        text = "".join(traceback.format_exception(exc)) + repr(exc)
        assert secret_part not in text
    assert secret_part not in repr(PosterClient(token))
