"""Classification of verified webhooks: pure rules, no server and no database."""

from __future__ import annotations

import pytest

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.http.intake import CHANGE_ACTIONS, Classification, classify
from poster_pipeline.poster.webhooks import WebhookEvent

ACTIVE = frozenset({"api-demo", "second-cafe"})


def event(**fields: object) -> WebhookEvent:
    values: dict[str, object] = {
        "account": "api-demo",
        "object": "ingredient",
        "object_id": 91,
        "action": "changed",
        "time": "1518794257",
        "verify": "0" * 32,
    }
    values.update(fields)
    return WebhookEvent(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("obj", "entity"),
    [(obj, spec.name) for spec in ENTITIES for obj in spec.webhook_objects],
)
@pytest.mark.parametrize("action", sorted(CHANGE_ACTIONS))
def test_every_catalogue_object_is_queued_for_its_entity(obj, entity, action):
    data = '{"type":1,"element_id":91,"storage_id":2}' if obj == "stock" else None
    hook = event(object=obj, action=action, data=data)
    assert classify(hook, ACTIVE) == Classification(entity, None)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "not json",
        "[2]",
        '{"storage_id":"x"}',
        '{"type":1}',
        '{"storage_id":"\u00b2"}',  # a digit to str.isdigit(), not to int()
        '{"storage_id":"9223372036854775808"}',  # beyond a BIGINT
    ],
)
def test_a_stock_hook_that_names_no_storage_is_ignored_with_a_reason(data):
    classified = classify(event(object="stock", data=data), ACTIVE)
    assert classified == Classification("stock", "stock hook without data.storage_id")


def test_dish_and_product_both_concern_products():
    assert classify(event(object="dish"), ACTIVE).entity == "products"
    assert classify(event(object="product"), ACTIVE).entity == "products"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"object": "transaction"}, (None, "object transaction is not synced")),
        ({"object": "client", "action": "added"}, (None, "object client is not synced")),
        ({"action": "test"}, ("ingredients", "test hook")),
        ({"action": "closed"}, ("ingredients", "unknown action closed")),
        ({"action": "Changed"}, ("ingredients", "unknown action Changed")),
        ({"account": "stranger"}, ("ingredients", "account stranger is not connected")),
    ],
)
def test_what_is_not_synced_is_ignored_with_a_reason(fields, expected):
    assert classify(event(**fields), ACTIVE) == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"object": "transaction", "action": "test", "account": "x"},
            "object transaction is not synced",
        ),
        ({"action": "test", "account": "x"}, "test hook"),
        ({"action": "closed", "account": "x"}, "unknown action closed"),
    ],
)
def test_the_first_rule_that_applies_gives_the_reason(fields, reason):
    assert classify(event(**fields), ACTIVE).ignore_reason == reason


def test_no_account_is_connected_when_there_are_none():
    assert classify(event(), frozenset()).ignore_reason == "account api-demo is not connected"


def test_the_result_unpacks_as_a_pair():
    entity, reason = classify(event(), ACTIVE)
    assert (entity, reason) == ("ingredients", None)
