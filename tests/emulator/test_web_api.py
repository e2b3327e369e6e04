"""The Poster emulator's Web API: wire shapes, tokens, control changes, faults, call counts.

One emulator serves the whole module; tests that change data touch objects no other test
reads, and faults are cleared after every test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from poster_pipeline.emulator import (
    EmulatorAccount,
    EmulatorConfig,
    RunningEmulator,
    start_in_thread,
)

SECOND = EmulatorAccount.derive("second-cafe", seed=7, number=555001)
CONFIG = EmulatorConfig(
    accounts=(EmulatorAccount.derive("api-demo", seed=7, number=813932), SECOND),
    seed=7,
    hang_seconds=0.5,
)
QUANTITY = re.compile(r"^-?\d+\.\d{5}$")
DIGITS = re.compile(r"^\d+$")

LIST_METHODS = {
    "storage.getSuppliers": "supplier_id",
    "menu.getIngredients": "ingredient_id",
    "menu.getCategoriesIngredients": "category_id",
    "menu.getCategories": "category_id",
    "menu.getWorkshops": "workshop_id",
    "storage.getStorages": "storage_id",
    "menu.getProducts": "product_id",
}
SINGLE_METHODS = {
    "menu.getIngredient": "ingredient_id",
    "menu.getCategoryIngredients": "category_id",
    "menu.getCategory": "category_id",
    "menu.getWorkshop": "workshop_id",
    "storage.getStorage": "storage_id",
    "menu.getProduct": "product_id",
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_in_thread(CONFIG) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(emulator: RunningEmulator) -> Iterator[None]:
    yield
    requests.delete(f"{emulator.control_url}/faults", timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def token() -> str:
    return CONFIG.accounts[0].token


def api(
    emulator: RunningEmulator, method: str, token: str | None = None, **params: Any
) -> requests.Response:
    query = dict(params)
    if token is not None:
        query["token"] = token
    return requests.get(f"{emulator.api_url}/{method}", params=query, timeout=10)


def response(emulator: RunningEmulator, method: str, token: str, **params: Any) -> Any:
    answer = api(emulator, method, token, **params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "response" in body, body
    return body["response"]


def control(emulator: RunningEmulator, verb: str, path: str, json: Any = None) -> requests.Response:
    return requests.request(verb, f"{emulator.control_url}{path}", json=json, timeout=10)


# -- wire shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "id_field"), LIST_METHODS.items())
def test_list_methods_send_ids_as_strings(
    emulator: RunningEmulator, token: str, method: str, id_field: str
) -> None:
    rows = response(emulator, method, token)
    assert isinstance(rows, list) and rows
    assert all(DIGITS.match(row[id_field]) for row in rows)
    assert len({row[id_field] for row in rows}) == len(rows)


def test_suppliers_shape(emulator: RunningEmulator, token: str) -> None:
    rows = response(emulator, "storage.getSuppliers", token)
    assert list(rows[0]) == [
        "supplier_id",
        "supplier_name",
        "supplier_phone",
        "supplier_adress",
        "supplier_comment",
        "supplier_code",
        "supplier_tin",
        "delete",
    ]
    assert all(isinstance(value, str) for row in rows for value in row.values())
    assert {row["delete"] for row in rows} == {"0", "1"}
    assert any(re.search("[а-яА-Я]", row["supplier_name"]) for row in rows)


def test_ingredients_shape(emulator: RunningEmulator, token: str) -> None:
    rows = response(emulator, "menu.getIngredients", token)
    for row in rows:
        assert QUANTITY.match(row["ingredient_left"]), row
        assert isinstance(row["ingredient_weight"], int | float)  # a number even in lists
        assert row["ingredient_unit"] in ("kg", "l", "p")
        assert row["delete"] in ("0", "1") and row["hidden"] in ("0", "1")
        assert "id_1c" not in row
    assert any(row["ingredient_left"].startswith("-") for row in rows)
    assert any(row["delete"] == "1" for row in rows)
    assert any(row["ingredient_name"] == "Молоко 3,2%" for row in rows)


def test_single_getters_send_ints(emulator: RunningEmulator, token: str) -> None:
    ingredient = response(emulator, "menu.getIngredient", token, ingredient_id=1)
    assert ingredient["ingredient_id"] == 1 and isinstance(ingredient["category_id"], int)
    assert isinstance(ingredient["ingredient_left"], int | float)
    assert ingredient["delete"] in (0, 1) and "id_1c" in ingredient
    category = response(emulator, "menu.getCategory", token, category_id=1)
    assert category["category_id"] == 1 and category["category_hidden"] in (0, 1)
    assert category["parent_category"] == 0 and isinstance(category["left"], int)
    assert category["visible"] == [{"spot_id": 1, "visible": 1}, {"spot_id": 2, "visible": 1}]
    assert "category_photo_origin" in category
    assert (
        response(emulator, "menu.getCategoryIngredients", token, category_id=2)["category_id"] == 2
    )
    storage = response(emulator, "storage.getStorage", token, storage_id=1)
    assert storage["storage_id"] == 1 and "storage_adress" in storage and storage["delete"] == 0
    product = response(emulator, "menu.getProduct", token, product_id=1)
    assert product["product_id"] == 1 and isinstance(product["cost"], int)
    assert all(isinstance(v, int) for spot in product["spots"] for v in spot.values())


def test_single_getter_matches_list_row(emulator: RunningEmulator, token: str) -> None:
    row = response(emulator, "menu.getWorkshops", token)[0]
    single = response(emulator, "menu.getWorkshop", token, workshop_id=row["workshop_id"])
    assert single == {
        "workshop_id": int(row["workshop_id"]),
        "workshop_name": row["workshop_name"],
        "delete": int(row["delete"]),
    }


def test_products_and_dishes(emulator: RunningEmulator, token: str) -> None:
    rows = response(emulator, "menu.getProducts", token)
    assert {row["type"] for row in rows} == {"2", "3"}
    for row in rows:
        assert DIGITS.match(row["cost"]) and isinstance(row["out"], int | float)
        assert all(isinstance(v, str) for spot in row["spots"] for v in spot.values())
        if row["type"] == "3":
            assert DIGITS.match(row["ingredient_id"]) and "ingredients" not in row
        else:
            assert "ingredient_id" not in row and row["ingredients"]
            assert all(isinstance(line["structure_id"], str) for line in row["ingredients"])
    products = response(emulator, "menu.getProducts", token, type="products")
    dishes = response(emulator, "menu.getProducts", token, type="batchtickets")
    assert {row["type"] for row in products} == {"3"} and {row["type"] for row in dishes} == {"2"}
    assert len(products) + len(dishes) == len(rows)
    category = rows[0]["menu_category_id"]
    in_category = response(emulator, "menu.getProducts", token, category_id=category)
    assert in_category == [row for row in rows if row["menu_category_id"] == category]


def test_references_are_consistent(emulator: RunningEmulator, token: str) -> None:
    def ids(method: str, field: str) -> set[str]:
        return {row[field] for row in response(emulator, method, token)}

    ingredient_categories = ids("menu.getCategoriesIngredients", "category_id")
    product_categories = ids("menu.getCategories", "category_id")
    assert ingredient_categories & product_categories  # colliding namespaces (§2.0)
    workshops = ids("menu.getWorkshops", "workshop_id")
    ingredients = response(emulator, "menu.getIngredients", token)
    system = {row["ingredient_id"] for row in ingredients if row["ingredients_type"] == "2"}
    raw = {row["ingredient_id"] for row in ingredients if row["ingredients_type"] == "1"}
    assert {row["category_id"] for row in ingredients} <= ingredient_categories | {"0"}
    for product in response(emulator, "menu.getProducts", token):
        assert product["menu_category_id"] in product_categories | {"0"}
        assert product["workshop"] in workshops
        if product["type"] == "3":
            assert product["ingredient_id"] in system
        else:
            assert {line["ingredient_id"] for line in product["ingredients"]} <= raw


def test_deleted_rows_from_the_start(emulator: RunningEmulator, token: str) -> None:
    workshops = response(emulator, "menu.getWorkshops", token)
    assert [w["delete"] for w in workshops].count("1") == 1
    # Removed products and categories are absent: their ids leave gaps.
    product_ids = [int(p["product_id"]) for p in response(emulator, "menu.getProducts", token)]
    assert (
        7 not in product_ids and response(emulator, "menu.getProduct", token, product_id=7) is False
    )


def test_unknown_ids(emulator: RunningEmulator, token: str) -> None:
    assert response(emulator, "menu.getIngredient", token, ingredient_id=999_999) is False
    assert response(emulator, "menu.getCategory", token, category_id=999_999) is False
    assert response(emulator, "menu.getProduct", token, product_id="abc") is False
    answer = api(emulator, "storage.getStorage", token, storage_id=999).json()
    assert answer["error"]["code"] == 32
    answer = api(emulator, "menu.getWorkshop", token).json()
    assert answer == {"error": {"code": 34, "message": "workshop_id is required"}}


def test_format_json_and_post_are_accepted(emulator: RunningEmulator, token: str) -> None:
    plain = api(emulator, "menu.getWorkshops", token).content
    assert api(emulator, "menu.getWorkshops", token, format="json").content == plain
    posted = requests.post(
        f"{emulator.api_url}/menu.getWorkshops", data={"token": token}, timeout=10
    )
    assert posted.content == plain


# -- tokens and methods -------------------------------------------------------------------------


def test_missing_token_is_error_10(emulator: RunningEmulator) -> None:
    answer = api(emulator, "menu.getIngredients")
    assert answer.status_code == 200
    assert answer.json() == {"error": {"code": 10, "message": "Access token is not given"}}


def test_bad_token_is_error_11(emulator: RunningEmulator) -> None:
    answer = api(emulator, "menu.getIngredients", "813932:" + "0" * 32)
    assert answer.status_code == 200
    assert answer.json() == {"error": {"code": 11, "message": "Bad access token"}}


@pytest.mark.parametrize("method", ["menu.getingredients", "storage.getSupplier", "nope"])
def test_unknown_method_is_405_code_30(emulator: RunningEmulator, token: str, method: str) -> None:
    answer = api(emulator, method, token)
    assert answer.status_code == 405
    assert answer.json() == {"error": {"code": 30, "message": "Method Not Allowed"}}


def test_the_token_selects_the_account(emulator: RunningEmulator, token: str) -> None:
    first = api(emulator, "storage.getSuppliers", token).content
    second = api(emulator, "storage.getSuppliers", SECOND.token).content
    assert first != second


def test_unknown_paths_answer_json(emulator: RunningEmulator) -> None:
    answer = requests.get(f"{emulator.url}/nowhere", timeout=5)
    assert answer.status_code == 404 and answer.json() == {"error": "Not Found"}


# -- determinism ----------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    with start_in_thread(CONFIG) as one, start_in_thread(CONFIG) as two:
        for method in LIST_METHODS:
            for account in CONFIG.accounts:
                ours = api(one, method, account.token).content
                assert ours == api(two, method, account.token).content, method
        other = EmulatorConfig(seed=8)
        assert other.accounts[0].token != EmulatorConfig(seed=7).accounts[0].token
        with start_in_thread(other) as different:
            theirs = api(different, "menu.getProducts", other.accounts[0].token).content
            assert theirs != api(one, "menu.getProducts", CONFIG.accounts[0].token).content


# -- control API -------------------------------------------------------------------------------


def test_health_and_accounts(emulator: RunningEmulator) -> None:
    assert control(emulator, "GET", "/health").json() == {"status": "ok"}
    accounts = control(emulator, "GET", "/accounts").json()
    assert [(a["name"], a["number"], a["token"]) for a in accounts] == [
        (a.name, a.number, a.token) for a in CONFIG.accounts
    ]


def test_create_change_remove_restore_flagged(emulator: RunningEmulator, token: str) -> None:
    created = control(
        emulator,
        "POST",
        "/api-demo/ingredients",
        {"ingredient_name": "Кефир 1%", "ingredient_unit": "l", "ingredient_left": "-2.5"},
    )
    assert created.status_code == 201, created.text
    new_id = created.json()["object"]["ingredient_id"]
    hook = created.json()["webhook"]
    assert hook["payload"]["object"] == "ingredient" and hook["payload"]["action"] == "added"
    assert hook["status"] == "skipped"  # this emulator has no webhook URL

    def listed() -> dict[str, Any]:
        rows = response(emulator, "menu.getIngredients", token)
        return next(row for row in rows if row["ingredient_id"] == str(new_id))

    assert listed()["ingredient_left"] == "-2.50000" and listed()["delete"] == "0"
    changed = control(emulator, "PATCH", f"/api-demo/ingredients/{new_id}", {"hidden": 1})
    assert changed.json()["webhook"]["payload"]["action"] == "changed"
    assert listed()["hidden"] == "1"
    removed = control(emulator, "DELETE", f"/api-demo/ingredients/{new_id}")
    assert removed.json()["removed"] is True
    assert removed.json()["webhook"]["payload"]["action"] == "removed"
    assert listed()["delete"] == "1"
    single = response(emulator, "menu.getIngredient", token, ingredient_id=new_id)
    assert single["delete"] == 1
    restored = control(emulator, "POST", f"/api-demo/ingredients/{new_id}/restore")
    assert restored.json()["webhook"]["payload"]["action"] == "added"
    assert listed()["delete"] == "0"


def test_removed_product_vanishes(emulator: RunningEmulator, token: str) -> None:
    def listed_ids() -> set[str]:
        return {row["product_id"] for row in response(emulator, "menu.getProducts", token)}

    assert "2" in listed_ids()
    removed = control(emulator, "DELETE", "/api-demo/products/2").json()
    assert removed["webhook"]["payload"]["object"] in ("product", "dish")
    assert "2" not in listed_ids()
    assert response(emulator, "menu.getProduct", token, product_id=2) is False
    visible = {o["product_id"] for o in control(emulator, "GET", "/api-demo/products").json()}
    everything = control(emulator, "GET", "/api-demo/products?include_removed=1").json()
    assert 2 not in visible and 2 in {o["product_id"] for o in everything}
    assert control(emulator, "GET", "/api-demo/products/2").json()["removed"] is True
    control(emulator, "POST", "/api-demo/products/2/restore").raise_for_status()
    assert "2" in listed_ids()


def test_product_webhook_object_follows_type(emulator: RunningEmulator) -> None:
    dish = control(
        emulator, "POST", "/second-cafe/products", {"product_name": "Окрошка", "type": 2}
    )
    assert dish.json()["webhook"]["payload"]["object"] == "dish"
    assert dish.json()["object"]["ingredients"] == []
    product = control(emulator, "POST", "/second-cafe/products", {"product_name": "Квас"})
    assert product.json()["webhook"]["payload"]["object"] == "product"
    assert product.json()["object"]["ingredient_id"] == 0


def test_removed_category_and_storage(emulator: RunningEmulator) -> None:
    token = SECOND.token
    control(emulator, "DELETE", "/second-cafe/product_categories/2").raise_for_status()
    assert "2" not in {c["category_id"] for c in response(emulator, "menu.getCategories", token)}
    assert response(emulator, "menu.getCategory", token, category_id=2) is False
    control(emulator, "DELETE", "/second-cafe/storages/1").raise_for_status()
    storages = response(emulator, "storage.getStorages", token)
    assert next(s for s in storages if s["storage_id"] == "1")["delete"] == "1"
    assert response(emulator, "storage.getStorage", token, storage_id=1)["delete"] == 1


def test_suppliers_send_no_webhook(emulator: RunningEmulator) -> None:
    answer = control(emulator, "PATCH", "/second-cafe/suppliers/1", {"supplier_adress": "Львов"})
    assert answer.status_code == 200 and answer.json()["webhook"] is None
    rows = response(emulator, "storage.getSuppliers", SECOND.token)
    assert rows[0]["supplier_adress"] == "Львов"


def test_category_rename_updates_product_category_name(emulator: RunningEmulator) -> None:
    token = SECOND.token
    categories = {c["category_id"] for c in response(emulator, "menu.getCategories", token)}
    product = next(
        p
        for p in response(emulator, "menu.getProducts", token)
        if p["menu_category_id"] in categories
    )
    category = product["menu_category_id"]
    path = f"/second-cafe/product_categories/{category}"
    control(emulator, "PATCH", path, {"category_name": "Новинки"}).raise_for_status()
    rows = response(emulator, "menu.getProducts", token, category_id=category)
    assert rows and {row["category_name"] for row in rows} == {"Новинки"}


def test_untouched_reference_to_a_removed_object_does_not_block_changes(
    emulator: RunningEmulator,
) -> None:
    category = control(emulator, "POST", "/api-demo/product_categories", {"category_name": "Лето"})
    category_id = category.json()["object"]["category_id"]
    body = {"product_name": "Лимонад", "menu_category_id": category_id}
    product = control(emulator, "POST", "/api-demo/products", body).json()["object"]
    assert product["category_name"] == "Лето"
    control(emulator, "DELETE", f"/api-demo/product_categories/{category_id}").raise_for_status()
    path = f"/api-demo/products/{product['product_id']}"
    assert control(emulator, "PATCH", path, {"hidden": 1}).status_code == 200
    moved = control(emulator, "PATCH", path, {"menu_category_id": category_id})
    assert moved.status_code == 422


@pytest.mark.parametrize(
    ("verb", "path", "body", "status"),
    [
        ("POST", "/api-demo/ingredients", {"ingredient_name": "X", "colour": "red"}, 422),
        ("POST", "/api-demo/ingredients", {"ingredient_name": "X", "ingredient_id": 5}, 422),
        ("POST", "/api-demo/ingredients", {"ingredient_name": "X", "ingredient_left": "a"}, 422),
        ("POST", "/api-demo/ingredients", {"ingredient_unit": "kg"}, 422),
        ("POST", "/api-demo/ingredients", {"ingredient_name": "X", "category_id": 9999}, 422),
        ("POST", "/api-demo/products", {"product_name": "X", "type": 2, "ingredient_id": 1}, 422),
        ("POST", "/api-demo/products", {"product_name": "X", "category_name": "Y"}, 422),
        (
            "POST",
            "/api-demo/products",
            {"product_name": "X", "type": 2, "ingredients": [{"ingredient_id": 999_999}]},
            422,
        ),
        ("PATCH", "/api-demo/product_categories/1", {"parent_category": 1}, 422),
        ("PATCH", "/api-demo/workshops/1", {"delete": 1}, 422),
        ("PATCH", "/api-demo/workshops/1", {"workshop_name": 5}, 422),
        ("PATCH", "/api-demo/products/1", {"type": 3}, 422),
        ("PATCH", "/api-demo/workshops/999", {"workshop_name": "X"}, 404),
        ("GET", "/nobody/workshops", None, 404),
        ("GET", "/api-demo/tables", None, 404),
        ("DELETE", "/api-demo/workshops/4", None, 409),  # deleted from the start
        ("POST", "/api-demo/workshops/1/restore", None, 409),
    ],
)
def test_control_refuses_bad_requests(
    emulator: RunningEmulator, verb: str, path: str, body: Any, status: int
) -> None:
    answer = control(emulator, verb, path, body)
    assert answer.status_code == status, answer.text
    assert isinstance(answer.json()["error"], str)


def test_control_refuses_non_json(emulator: RunningEmulator) -> None:
    answer = requests.post(f"{emulator.control_url}/api-demo/workshops", data="{", timeout=5)
    assert answer.status_code == 400


def test_control_lists_canonical_values(emulator: RunningEmulator) -> None:
    workshops = control(emulator, "GET", "/api-demo/workshops").json()
    assert workshops[0] == {"workshop_id": 1, "workshop_name": "Бар", "delete": 0}


# -- faults -----------------------------------------------------------------------------------


def add_fault(emulator: RunningEmulator, **spec: Any) -> dict[str, Any]:
    answer = control(emulator, "POST", "/faults", spec)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_latency_fault_expires(emulator: RunningEmulator, token: str) -> None:
    add_fault(emulator, method="menu.getWorkshops", kind="latency", seconds=0.3, times=1)
    started = time.monotonic()
    assert response(emulator, "menu.getWorkshops", token)
    assert time.monotonic() - started >= 0.3
    assert control(emulator, "GET", "/faults").json() == []


def test_hang_fault_holds_the_answer(emulator: RunningEmulator, token: str) -> None:
    add_fault(emulator, method="menu.getWorkshops", kind="hang", times=1)
    with pytest.raises(requests.ReadTimeout):
        requests.get(
            f"{emulator.api_url}/menu.getWorkshops", params={"token": token}, timeout=(5, 0.1)
        )
    assert response(emulator, "menu.getWorkshops", token)


def test_http_status_fault(emulator: RunningEmulator, token: str) -> None:
    add_fault(emulator, method="menu.getWorkshops", kind="http_status", status=502, times=2)
    for _ in range(2):
        answer = api(emulator, "menu.getWorkshops", token)
        assert answer.status_code == 502 and "text/html" in answer.headers["content-type"]
    assert api(emulator, "menu.getWorkshops", token).status_code == 200


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("object", {"error": {"code": 700, "message": "Ограничение по тарифу"}}),
        ("int", {"error": 700, "message": "Ограничение по тарифу"}),
        ("string", {"error": "Ограничение по тарифу"}),
    ],
)
def test_error_fault_forms(
    emulator: RunningEmulator, token: str, form: str, expected: dict[str, Any]
) -> None:
    add_fault(emulator, method="menu.getIngredient", kind="error", code=700, form=form, times=1)
    answer = api(emulator, "menu.getIngredient", token, ingredient_id=1)
    assert answer.status_code == 200 and answer.json() == expected
    assert "response" in api(emulator, "menu.getIngredient", token, ingredient_id=1).json()


def test_truncate_and_empty_faults(emulator: RunningEmulator, token: str) -> None:
    full = response(emulator, "storage.getSuppliers", token)
    add_fault(emulator, method="storage.getSuppliers", kind="truncate", keep=3, times=1)
    assert response(emulator, "storage.getSuppliers", token) == full[:3]
    add_fault(emulator, method="storage.getSuppliers", kind="truncate", times=1)
    assert response(emulator, "storage.getSuppliers", token) == full[: len(full) // 2]
    add_fault(emulator, method="storage.getSuppliers", kind="empty", times=1)
    assert response(emulator, "storage.getSuppliers", token) == []
    assert response(emulator, "storage.getSuppliers", token) == full


def test_rate_limit_fault(emulator: RunningEmulator, token: str) -> None:
    add_fault(emulator, method="*", kind="rate_limit", times=1)
    answer = api(emulator, "menu.getProducts", token)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"


def test_response_false_fault(emulator: RunningEmulator, token: str) -> None:
    add_fault(emulator, method="menu.getProduct", kind="response_false", times=1)
    assert response(emulator, "menu.getProduct", token, product_id=1) is False
    assert response(emulator, "menu.getProduct", token, product_id=1)["product_id"] == 1


def test_fault_limited_to_one_account(emulator: RunningEmulator, token: str) -> None:
    add_fault(emulator, method="menu.getWorkshops", account="second-cafe", kind="empty")
    assert response(emulator, "menu.getWorkshops", SECOND.token) == []
    assert response(emulator, "menu.getWorkshops", token)
    assert response(emulator, "menu.getWorkshops", SECOND.token) == []  # no `times`: stays


def test_fault_management(emulator: RunningEmulator, token: str) -> None:
    first = add_fault(emulator, method="menu.getWorkshops", kind="empty")
    add_fault(emulator, method="storage.getStorages", kind="empty")
    listed = control(emulator, "GET", "/faults").json()
    assert [f["kind"] for f in listed] == ["empty", "empty"] and listed[0]["id"] == first["id"]
    assert control(emulator, "DELETE", f"/faults/{first['id']}").status_code == 200
    assert response(emulator, "menu.getWorkshops", token)
    assert control(emulator, "DELETE", "/faults").json() == {"cleared": 1}
    assert response(emulator, "storage.getStorages", token)


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"method": "menu.getWorkshops", "kind": "explode"}, 422),
        ({"method": "menu.getWorkshop", "kind": "truncate"}, 422),
        ({"method": "menu.getWorkShops", "kind": "empty"}, 422),
        ({"method": "menu.getWorkshops", "kind": "latency"}, 422),
        ({"method": "menu.getWorkshops", "kind": "error"}, 422),
        ({"method": "menu.getWorkshops", "kind": "empty", "times": 0}, 422),
        ({"method": "menu.getWorkshops", "kind": "empty", "seconds": 1}, 422),
        ({"method": "menu.getWorkshops", "kind": "empty", "account": "nobody"}, 404),
    ],
)
def test_bad_faults_are_refused(
    emulator: RunningEmulator, spec: dict[str, Any], status: int
) -> None:
    assert control(emulator, "POST", "/faults", spec).status_code == status


# -- call counters ----------------------------------------------------------------------------


def test_call_counters(emulator: RunningEmulator, token: str) -> None:
    control(emulator, "DELETE", "/calls").raise_for_status()
    add_fault(emulator, method="menu.getWorkshops", kind="http_status", status=503, times=1)
    api(emulator, "menu.getWorkshops", token)
    api(emulator, "menu.getWorkshops", token)
    api(emulator, "menu.getWorkshop", SECOND.token, workshop_id=1)
    api(emulator, "menu.getWorkshops", "bad-token")
    api(emulator, "menu.getworkshops", token)
    assert control(emulator, "GET", "/calls").json() == {
        "total": 5,
        "by_method": {"menu.getWorkshop": 1, "menu.getWorkshops": 3, "menu.getworkshops": 1},
        "by_account": {
            "(unknown)": {"menu.getWorkshops": 1},
            "api-demo": {"menu.getWorkshops": 2, "menu.getworkshops": 1},
            "second-cafe": {"menu.getWorkshop": 1},
        },
    }
    reset = control(emulator, "DELETE", "/calls").json()
    assert reset == {"total": 0, "by_method": {}, "by_account": {}}
