"""The catalogue's typing of Poster's wire values, and the records built from it."""

from datetime import datetime
from decimal import Decimal

import pytest

from poster_pipeline.catalogue import (
    ENTITIES,
    CoercionError,
    FieldType,
    coerce,
    entity,
    entity_for_webhook_object,
)
from poster_pipeline.poster.records import RecordError, to_record


@pytest.mark.parametrize(
    ("field_type", "wire", "expected"),
    [
        (FieldType.INTEGER, "91", 91),
        (FieldType.INTEGER, 91, 91),
        (FieldType.INTEGER, " 7 ", 7),
        (FieldType.INTEGER, "0", 0),
        (FieldType.INTEGER, "12.000", 12),
        (FieldType.INTEGER, 3.0, 3),
        (FieldType.INTEGER, "", None),
        (FieldType.INTEGER, None, None),
        (FieldType.FLAG, "1", True),
        (FieldType.FLAG, "0", False),
        (FieldType.FLAG, 1, True),
        (FieldType.FLAG, 0, False),
        (FieldType.FLAG, True, True),
        (FieldType.FLAG, "", False),
        (FieldType.MONEY, "654", 654),
        (FieldType.MONEY, 1461, 1461),
        (FieldType.QUANTITY, "443.45000", Decimal("443.45")),
        (FieldType.QUANTITY, "-908.00000", Decimal("-908")),
        (FieldType.QUANTITY, 0, Decimal(0)),
        (FieldType.QUANTITY, 0.25, Decimal("0.25")),
        (FieldType.TEXT, "Молоко 3,2%", "Молоко 3,2%"),
        (FieldType.TEXT, 123, "123"),
        (FieldType.JSON, [{"spot_id": "1", "price": "400"}], [{"spot_id": "1", "price": "400"}]),
        (
            FieldType.JSON,
            [{"spot_id": 1, "price": 400, "on": True}],
            [{"spot_id": "1", "price": "400", "on": "1"}],
        ),
        (FieldType.JSON, {"barcode": "0123", "none": None}, {"barcode": "0123", "none": None}),
        (FieldType.DATETIME, "2017-11-17 08:09:33", datetime(2017, 11, 17, 8, 9, 33)),
        (FieldType.DATETIME, "0000-00-00 00:00:00", None),
        (FieldType.DATETIME, "", None),
    ],
)
def test_wire_values_are_coerced_to_one_type_per_field(field_type, wire, expected):
    assert coerce(field_type, wire) == expected
    if expected is not None:
        assert type(coerce(field_type, wire)) is type(expected)


@pytest.mark.parametrize(
    ("field_type", "wire"),
    [
        (FieldType.INTEGER, "abc"),
        (FieldType.INTEGER, "1.5"),
        (FieldType.INTEGER, [1]),
        (FieldType.MONEY, "6698828.90"),  # major units where minor units are expected: refuse
        (FieldType.FLAG, "2"),
        (FieldType.FLAG, 7),
        (FieldType.QUANTITY, "NaN"),
        (FieldType.QUANTITY, "1,5"),
        (FieldType.TEXT, {"a": 1}),
        (FieldType.DATETIME, "17.11.2017"),
        (FieldType.DATETIME, 1510906173),
    ],
)
def test_values_that_cannot_mean_what_the_field_says_are_refused(field_type, wire):
    with pytest.raises(CoercionError):
        coerce(field_type, wire)


def test_catalogue_names_match_the_fixed_names_of_the_design():
    assert [e.name for e in ENTITIES] == [
        "suppliers",
        "ingredients",
        "ingredient_categories",
        "product_categories",
        "workshops",
        "storages",
        "products",
        "spots",
        "stock",
        "supplies",
    ]
    keys = {e.name: e.key for e in ENTITIES}
    assert keys["suppliers"] == "supplier_id"
    assert keys["ingredient_categories"] == keys["product_categories"] == "category_id"
    for spec in ENTITIES:
        assert spec.fields[0].name == spec.key
        assert set(spec.keys) <= set(spec.field_names)
        assert len(set(spec.field_names)) == len(spec.fields)
        assert (spec.single_method is None) == (spec.single_param is None)


def test_webhook_objects_route_to_their_entity_and_unknown_objects_to_none():
    assert entity_for_webhook_object("ingredient").name == "ingredients"
    assert entity_for_webhook_object("dish").name == "products"
    assert entity_for_webhook_object("product").name == "products"
    assert entity_for_webhook_object("ingredients_category").name == "ingredient_categories"
    assert entity_for_webhook_object("category").name == "product_categories"
    assert entity_for_webhook_object("supplier").name == "suppliers"
    assert entity_for_webhook_object("transaction") is None


def test_unknown_entity_error_lists_the_known_ones():
    with pytest.raises(KeyError, match="ingredients"):
        entity("stocks")


def test_list_and_single_shapes_of_one_object_make_the_same_record():
    spec = entity("product_categories")
    from_list = {
        "category_id": "30",
        "category_name": "Роллы",
        "parent_category": "0",
        "category_hidden": "0",
        "sort_order": "999",
        "fiscal": "0",
        "left": "3",
        "right": "4",
        "level": "1",
    }
    from_getter = {**from_list, "category_id": 30, "parent_category": 0, "category_hidden": 0}
    from_getter.update(sort_order=999, fiscal=0, left=3, right=4, level=1)
    assert to_record(spec, from_list).values == to_record(spec, from_getter).values
    record = to_record(spec, from_list)
    assert record.id == 30
    assert record.values["category_hidden"] is False
    assert record.raw is from_list


def test_delete_flag_is_read_where_the_entity_has_one():
    workshops = entity("workshops")
    deleted = to_record(
        workshops, {"workshop_id": "4", "workshop_name": "Старый бар", "delete": "1"}
    )
    assert deleted.is_deleted
    assert not to_record(
        workshops, {"workshop_id": "1", "workshop_name": "Бар", "delete": "0"}
    ).is_deleted
    # Products have no flag: a `delete` key, were it ever sent, does not decide anything.
    product = to_record(entity("products"), {"product_id": "138", "delete": "1"})
    assert not product.is_deleted


def test_a_record_without_its_key_or_with_a_bad_value_names_the_problem():
    spec = entity("ingredients")
    with pytest.raises(RecordError, match="without 'ingredient_id'"):
        to_record(spec, {"ingredient_name": "Соль"})
    with pytest.raises(RecordError, match=r"ingredient_id='91'.*ingredient_left"):
        to_record(spec, {"ingredient_id": "91", "ingredient_left": "много"})


def test_a_supply_from_the_getter_and_from_the_list_is_the_same_record():
    spec = entity("supplies")
    listed = {"supply_id": "46", "date": "2017-05-18 09:07:00", "supply_sum": "669882890"}
    single = {"supply_id": "46", "date": "2017-05-18 09:07:00", "supply_sum": "6698828.90"}
    from_list = to_record(spec, listed)
    from_getter = to_record(spec, single, major_units=spec.single_major_units)
    assert from_list.values == from_getter.values
    assert from_getter.values["supply_sum"] == 669882890
    assert from_getter.raw is single  # kept as Poster sent it
    with pytest.raises(RecordError, match=r"supply_sum.*whole number of kopecks"):
        to_record(spec, {**single, "supply_sum": "10.005"}, major_units=spec.single_major_units)


def test_a_stock_row_takes_its_storage_from_the_call():
    spec = entity("stock")
    raw = {"ingredient_id": "39", "storage_ingredient_left": "-908.00000"}
    record = to_record(spec, raw, scope_id=3)
    assert (record.values["storage_id"], record.id) == (3, 39)
    assert record.values["storage_ingredient_left"] == Decimal("-908")
    with pytest.raises(RecordError, match="without its storage_id"):
        to_record(spec, raw)
