"""The emulator's pure parts, without a server: config, data, wire styles, coercion, faults."""

from __future__ import annotations

import json
import re

import pytest

from poster_pipeline.emulator import EmulatorAccount, EmulatorConfig, parse_account
from poster_pipeline.emulator.coerce import FieldError, new_record, patched_record
from poster_pipeline.emulator.config import DEFAULT_SIZES, ENTITY_NAMES
from poster_pipeline.emulator.entities import ENTITIES, METHODS
from poster_pipeline.emulator.faults import FaultBook
from poster_pipeline.emulator.state import EmulatorState
from poster_pipeline.emulator.wire import list_row, single_object

TOKEN = re.compile(r"^(\d+):[0-9a-f]{32}$")


def test_default_config_has_the_demo_account() -> None:
    config = EmulatorConfig()
    (account,) = config.accounts
    assert (account.name, account.number) == ("api-demo", 813932)
    assert TOKEN.match(account.token) and account.token.startswith("813932:")
    assert dict(config.sizes) == dict(DEFAULT_SIZES)
    assert len(config.webhook_retry_delays) == 15  # Poster re-sends 15 times (§3.6)


def test_sizes_merge_with_defaults() -> None:
    sizes = EmulatorConfig(sizes={"ingredients": 5}).sizes
    assert sizes["ingredients"] == 5 and sizes["products"] == DEFAULT_SIZES["products"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sizes": {"tables": 3}},
        {"sizes": {"products": -1}},
        {"accounts": (parse_account("a", 1), parse_account("a", 2))},
        {"webhook_retry_delays": (1, -1)},
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**kwargs)  # type: ignore[arg-type]


def test_parse_account_forms() -> None:
    derived = parse_account("my-cafe", seed=5)
    assert derived == parse_account("my-cafe", seed=5) != parse_account("my-cafe", seed=6)
    assert TOKEN.match(derived.token).group(1) == str(derived.number)  # type: ignore[union-attr]
    assert parse_account("api-demo", seed=5).number == 813932
    given = parse_account("cafe:123:123:" + "a" * 32, seed=5)
    assert given == EmulatorAccount("cafe", 123, "123:" + "a" * 32)
    for bad in ("cafe:12", "cafe:x:tok", "bad name", "cafe:12:"):
        with pytest.raises(ValueError):
            parse_account(bad, seed=5)


def test_methods_cover_every_entity() -> None:
    assert set(ENTITIES) == set(ENTITY_NAMES)
    # Plus storage.getStorageLeftovers: stock is balances, not an entity store.
    assert sum(is_list for _, is_list in METHODS.values()) == len(ENTITIES) + 1
    assert "storage.getSupplier" not in METHODS  # Poster has no single supplier getter


def test_growing_one_entity_keeps_the_others() -> None:
    small = EmulatorState(EmulatorConfig(seed=9))
    large = EmulatorState(EmulatorConfig(seed=9, sizes={"ingredients": 1000}))
    for entity in ("suppliers", "workshops", "storages", "product_categories"):
        assert small.listing("api-demo", entity).body == large.listing("api-demo", entity).body
    # The first rows of the grown entity are the same rows.
    assert large.listing("api-demo", "ingredients").fragments[:200] == (
        small.listing("api-demo", "ingredients").fragments
    )


def test_wire_styles() -> None:
    spec = ENTITIES["ingredients"]
    record = EmulatorState(EmulatorConfig()).record("api-demo", "ingredients", 1)
    listed, single = list_row(spec, record), single_object(spec, record)
    assert listed["ingredient_id"] == "1" and single["ingredient_id"] == 1
    assert listed["ingredient_left"] == f"{record['ingredient_left']:.5f}"
    assert single["ingredient_left"] == record["ingredient_left"]
    assert listed["ingredient_weight"] == single["ingredient_weight"] == 0
    assert "id_1c" not in listed and "id_1c" in single
    json.dumps(listed), json.dumps(single)


def test_new_and_patched_records() -> None:
    spec = ENTITIES["products"]
    dish = new_record(spec, {"product_name": "Уха", "type": "2", "cost": "1500"}, 500)
    assert dish["product_id"] == 500 and dish["type"] == 2 and dish["cost"] == 1500
    assert dish["ingredients"] == [] and "ingredient_id" not in dish
    assert [row["spot_id"] for row in dish["spots"]] == [1, 2]
    assert list(dish) == [f.name for f in spec.fields if f.name in dish]  # wire order
    changed = patched_record(spec, dish, {"hidden": True, "out": "250.5"})
    assert changed["hidden"] == 1 and changed["out"] == 250.5 and dish["hidden"] == 0
    line = {"structure_id": 1, "ingredient_id": 2, "structure_brutto": 100}
    with_recipe = patched_record(spec, dish, {"ingredients": [line]})
    assert with_recipe["ingredients"][0]["structure_unit"] == "kg"  # defaults filled in


@pytest.mark.parametrize(
    "body",
    [
        {"product_name": "X", "hidden": 2},
        {"product_name": "X", "type": 1},
        {"product_name": "X", "spots": [{"spot_id": 1, "colour": "red"}]},
        {"product_name": "X", "spots": "none"},
        {"product_name": "X", "cost": 1.5},
        {"product_name": "X", "cost": True},
        {"product_name": " "},
        ["product_name"],
    ],
)
def test_bad_bodies_are_refused(body: object) -> None:
    with pytest.raises(FieldError):
        new_record(ENTITIES["products"], body, 1)


def test_fault_book_matching_and_expiry() -> None:
    book = FaultBook({"menu.getProducts": True, "menu.getProduct": False})
    limited = book.add({"method": "menu.getProducts", "kind": "empty", "times": 2})
    book.add({"method": "*", "kind": "truncate", "account": "b"})
    assert book.take("menu.getProduct", "a", is_list=False) is None
    assert book.take("menu.getProducts", "a", is_list=True) is limited
    assert book.take("menu.getProducts", "a", is_list=True) is limited
    assert book.take("menu.getProducts", "a", is_list=True) is None  # expired after 2
    assert book.take("menu.getProduct", "b", is_list=False) is None  # truncate: lists only
    taken = book.take("menu.getProducts", "b", is_list=True)
    assert taken is not None and taken.kind == "truncate" and taken.applied == 1
    assert taken.to_json() == {
        "id": 2,
        "method": "*",
        "kind": "truncate",
        "account": "b",
        "remaining": None,
        "keep": None,
        "applied": 1,
    }
