"""Deterministic demo data for one emulated account, in canonical form (see :mod:`.entities`).

Every entity draws from its own ``random.Random`` seeded with (seed, account, entity), so
growing one entity's size never reshuffles another's rows; only the references into a
resized entity move. The data carries the quirks a sync must survive: Cyrillic names,
ingredient-category ids that collide with product-category ids (both count from 1,
docs/poster-api.md §2.0), soft-deleted suppliers, workshops, storages and ingredients listed with
``delete`` 1, removed categories and products that are absent from their lists, hidden rows,
negative stock (§1.7) and money in kopecks.
"""

from __future__ import annotations

import datetime
import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from poster_pipeline.emulator.config import EmulatorAccount
from poster_pipeline.emulator.entities import SPOT_IDS

__all__ = ["Generated", "generate_account"]

Record = dict[str, Any]


@dataclass
class Generated:
    """One entity's rows, ordered by id; ``removed`` holds ids absent from Poster's list."""

    records: list[Record]
    removed: set[int] = field(default_factory=set)


SUPPLIER_NAMES = (
    "Закупщик",
    "ООО «Молочный край»",
    "ИП Петров А. В.",
    "Метро Кэш энд Кэрри",
    "ООО «Фрукты-Овощи»",
    "ООО «Рыбный двор»",
    "ТД «Мясной»",
    "ООО «Кофе Трейд»",
    "ИП Сидорова Е. Н.",
    "ООО «Напитки Плюс»",
    "ООО «Пекарня №1»",
    "ООО «Упаковка-Сервис»",
)
WORKSHOP_NAMES = (
    "Бар",
    "Кухня",
    "Кондитерский цех",
    "Суши-бар",
    "Гриль",
    "Пиццерия",
    "Холодный цех",
    "Горячий цех",
)
STORAGE_NAMES = (
    "Склад Кухня",
    "Склад Бар",
    "Основной склад",
    "Склад Кондитерская",
    "Морозильная камера",
    "Склад Суши-бар",
)
INGREDIENT_CATEGORY_NAMES = (
    "Алкоголь",
    "Мясо",
    "Овощи",
    "Фрукты",
    "Молочные продукты",
    "Бакалея",
    "Рыба и морепродукты",
    "Напитки",
    "Специи",
    "Упаковка",
    "Соусы",
    "Кофе и чай",
    "Хлеб и выпечка",
    "Заморозка",
)
PRODUCT_CATEGORY_NAMES: tuple[tuple[str, str | None], ...] = (
    ("Роллы", "sushi"),
    ("Супы", "soups"),
    ("Салаты", "salads"),
    ("Напитки", "drinks"),
    ("Десерты", "desserts"),
    ("Вода", "water"),
    ("Кофе", "coffee"),
    ("Горячие блюда", None),
    ("Пицца", "pizza"),
    ("Чай", "tea"),
    ("Завтраки", None),
    ("Закуски", None),
    ("Алкоголь", "alcohol"),
    ("Бургеры", "burgers"),
    ("Паста", "pasta"),
    ("Суши", "sushi"),
)
# (name, unit, goods): goods are the "system ingredients" (ingredients_type 2) behind products
# sold as is (docs/poster-api.md §2.2, §2.8 ingredient_id).
INGREDIENT_NAMES: tuple[tuple[str, str, bool], ...] = (
    ("Молоко 3,2%", "l", False),
    ("Сливки 33%", "l", False),
    ("Сметана 20%", "kg", False),
    ("Творог 9%", "kg", False),
    ("Масло сливочное 82%", "kg", False),
    ("Сыр Моцарелла", "kg", False),
    ("Сыр Пармезан", "kg", False),
    ("Сыр сливочный", "kg", False),
    ("Яйцо куриное", "p", False),
    ("Мука пшеничная", "kg", False),
    ("Сахар", "kg", False),
    ("Соль", "kg", False),
    ("Перец чёрный молотый", "kg", False),
    ("Масло подсолнечное", "l", False),
    ("Масло оливковое", "l", False),
    ("Рис для суши", "kg", False),
    ("Нори", "p", False),
    ("Лосось охлаждённый", "kg", False),
    ("Тунец", "kg", False),
    ("Креветки тигровые", "kg", False),
    ("Угорь копчёный", "kg", False),
    ("Икра масаго", "kg", False),
    ("Говядина", "kg", False),
    ("Свинина", "kg", False),
    ("Куриное филе", "kg", False),
    ("Бекон", "kg", False),
    ("Картофель", "kg", False),
    ("Лук репчатый", "kg", False),
    ("Морковь", "kg", False),
    ("Свёкла", "kg", False),
    ("Капуста белокочанная", "kg", False),
    ("Огурцы", "kg", False),
    ("Помидоры", "kg", False),
    ("Авокадо", "p", False),
    ("Лимон", "p", False),
    ("Апельсин", "p", False),
    ("Яблоки", "p", False),
    ("Чеснок", "kg", False),
    ("Укроп", "kg", False),
    ("Салат Айсберг", "kg", False),
    ("Кофе в зёрнах", "kg", False),
    ("Чай чёрный", "kg", False),
    ("Сироп карамельный", "l", False),
    ("Шоколад тёмный", "kg", False),
    ("Соус соевый", "l", False),
    ("Васаби", "kg", False),
    ("Имбирь маринованный", "kg", False),
    ("Майонез", "kg", False),
    ("Стаканчик 250 мл", "p", False),
    ("Коробка для пиццы", "p", False),
    ("Evian 0,5 л", "p", True),
    ("Coca-Cola 0,33 л", "p", True),
    ("Jack Daniels", "l", True),
    ("Сок апельсиновый 1 л", "p", True),
    ("Круассан", "p", True),
    ("Боржоми 0,5 л", "p", True),
)
DISH_NAMES = (
    "Филадельфия",
    "Калифорния",
    "Дракон",
    "Унаги маки",
    "Борщ",
    "Солянка",
    "Том ям",
    "Цезарь с курицей",
    "Греческий салат",
    "Оливье",
    "Стейк рибай",
    "Паста Карбонара",
    "Пицца Маргарита",
    "Пицца Пепперони",
    "Бургер классический",
    "Сырники",
    "Блины с вареньем",
    "Чизкейк",
    "Тирамису",
    "Капучино",
    "Латте",
    "Американо",
    "Раф кофе",
    "Чай с лимоном",
    "Глинтвейн",
)
GOODS_NAMES = (
    "Evian",
    "Coca-Cola 0,33",
    "Jack Daniels 50 мл",
    "Сок апельсиновый",
    "Круассан",
    "Боржоми",
)
STREETS = ("ул. Крещатик", "ул. Садовая", "пр. Мира", "ул. Мадридская", "ул. Ленина")
CITIES = ("Киев", "Москва", "Алматы", "Минск", "Одесса")
COLORS = ("white", "red", "green", "yellow", "blue", "violet")


def _name(pool: Sequence[str], index: int) -> str:
    """The ``index``-th name (0-based): the pool, then the pool again numbered "2", "3", …"""
    round_ = index // len(pool)
    base = pool[index % len(pool)]
    return base if round_ == 0 else f"{base} {round_ + 1}"


def _address(rng: random.Random) -> str:
    return f"{rng.choice(CITIES)}, {rng.choice(STREETS)}, {rng.randint(1, 120)}"


def _uuid_1c(rng: random.Random) -> str:
    return (
        f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-11e6-9c83-{rng.getrandbits(48):012x}"
    )


def _suppliers(rng: random.Random, size: int, _: Mapping[str, Generated]) -> Generated:
    records = []
    for i in range(1, size + 1):
        records.append(
            {
                "supplier_id": i,
                "supplier_name": _name(SUPPLIER_NAMES, i - 1),
                "supplier_phone": f"+380 {rng.randint(50, 99)} {rng.randint(100, 999)} "
                f"{rng.randint(10, 99)} {rng.randint(10, 99)}",
                "supplier_adress": _address(rng) if rng.random() < 0.7 else "",
                "supplier_comment": "Доставка по вторникам" if rng.random() < 0.2 else "",
                "supplier_code": f"{rng.randint(10_000_000, 99_999_999)}",
                "supplier_tin": f"{rng.randint(10**9, 10**10 - 1)}" if rng.random() < 0.6 else "",
                # One deleted supplier always, a few more at random: they stay listed (§2.1).
                "delete": int(i == 2 or rng.random() < 0.05),
            }
        )
    return Generated(records)


def _workshops(rng: random.Random, size: int, _: Mapping[str, Generated]) -> Generated:
    records = [
        # The last workshop is a deleted one, still listed with delete "1" (§2.5).
        {"workshop_id": i, "workshop_name": _name(WORKSHOP_NAMES, i - 1), "delete": 0}
        for i in range(1, size + 1)
    ]
    if size >= 2:
        records[-1]["delete"] = 1
    return Generated(records)


def _storages(rng: random.Random, size: int, _: Mapping[str, Generated]) -> Generated:
    records = [
        {
            "storage_id": i,
            "storage_name": _name(STORAGE_NAMES, i - 1),
            "storage_adress": _address(rng) if rng.random() < 0.5 else "",
            "delete": 0,
        }
        for i in range(1, size + 1)
    ]
    if size >= 3:
        records[-1]["delete"] = 1
    return Generated(records)


def _ingredient_categories(rng: random.Random, size: int, _: Mapping[str, Generated]) -> Generated:
    records = [
        {
            "category_id": i,
            "name": _name(INGREDIENT_CATEGORY_NAMES, i - 1),
            "id_1c": _uuid_1c(rng) if rng.random() < 0.5 else None,
        }
        for i in range(1, size + 1)
    ]
    # Removed categories vanish from the list (§2.3); keep one removed from the start.
    return Generated(records, {size} if size >= 5 else set())


def _nested_set(parents: Mapping[int, int]) -> dict[int, tuple[int, int, int]]:
    """(left, right, level) of each category; Poster's invisible root holds left 1 (§2.4)."""
    children: dict[int, list[int]] = {}
    for node, parent in parents.items():
        children.setdefault(parent, []).append(node)
    bounds: dict[int, tuple[int, int, int]] = {}
    counter = 1

    def visit(node: int, level: int) -> None:
        nonlocal counter
        counter += 1
        left = counter
        for child in children.get(node, ()):
            visit(child, level + 1)
        counter += 1
        bounds[node] = (left, counter, level)

    for root in children.get(0, ()):
        visit(root, 1)
    return bounds


def _product_categories(rng: random.Random, size: int, _: Mapping[str, Generated]) -> Generated:
    roots = min(size, 5)
    parents = {
        i: (rng.randint(1, roots) if i > roots and rng.random() < 0.4 else 0)
        for i in range(1, size + 1)
    }
    bounds = _nested_set(parents)
    records = []
    for i in range(1, size + 1):
        tag = PRODUCT_CATEGORY_NAMES[(i - 1) % len(PRODUCT_CATEGORY_NAMES)][1]
        left, right, level = bounds[i]
        photo, origin = "", ""
        if rng.random() < 0.5:
            stem = f"/upload/menu/category_{1_420_000_000 + i * 7919}_{i}"
            photo, origin = f"{stem}.jpg", f"{stem}_original.jpg"
        records.append(
            {
                "category_id": i,
                "category_name": _name([n for n, _ in PRODUCT_CATEGORY_NAMES], i - 1),
                "category_photo": photo,
                "parent_category": parents[i],
                "category_color": rng.choice(COLORS),
                "category_hidden": int(i == 3 or rng.random() < 0.05),
                "sort_order": 999 if rng.random() < 0.5 else i,
                "fiscal": 0,
                "nodiscount": int(rng.random() < 0.1),
                "tax_id": 0,
                "left": left,
                "right": right,
                "level": level,
                "category_tag": tag,
                "category_photo_origin": origin,
                "visible": [{"spot_id": s, "visible": 1} for s in SPOT_IDS],
            }
        )
    # The last category is a leaf (children hang under the first five), so removing it
    # orphans nothing; it is absent from the list (§2.4).
    return Generated(records, {size} if size >= 6 else set())


def _live_ids(generated: Generated, id_field: str) -> list[int]:
    return [
        r[id_field]
        for r in generated.records
        if not r.get("delete") and r[id_field] not in generated.removed
    ]


def _ingredients(rng: random.Random, size: int, done: Mapping[str, Generated]) -> Generated:
    categories = _live_ids(done["ingredient_categories"], "category_id")
    records = []
    rand, uniform = rng.random, rng.uniform
    pool = INGREDIENT_NAMES
    for i in range(1, size + 1):
        base, unit, goods = pool[(i - 1) % len(pool)]
        round_ = (i - 1) // len(pool)
        draw = rand()
        left = round(uniform(0, 500), 3)
        records.append(
            {
                "ingredient_id": i,
                "ingredient_name": base if round_ == 0 else f"{base} {round_ + 1}",
                "ingredient_barcode": f"482{i:010d}" if draw < 0.3 else "",
                "category_id": categories[int(draw * 1e6) % len(categories)]
                if categories and draw > 0.02
                else 0,
                # Some stock is negative: sales written off past zero (§1.7).
                "ingredient_left": -left if draw > 0.95 else left,
                "limit_value": 5 if draw < 0.1 else 0,
                "time_notif": 0,
                "ingredient_unit": unit,
                "ingredient_weight": 0.25 if unit == "p" and not goods else 0,
                "ingredients_losses_clear": 10 if unit == "kg" and draw < 0.5 else 0,
                "ingredients_losses_cook": 0,
                "ingredients_losses_fry": 15 if unit == "kg" and draw < 0.2 else 0,
                "ingredients_losses_stew": 0,
                "ingredients_losses_bake": 0,
                "ingredients_type": 2 if goods else 1,
                "partial_write_off": int(unit == "p" and draw < 0.1),
                "delete": int(i == 5 or 0.5 < draw < 0.52),
                "hidden": int(0.6 < draw < 0.63),
                "id_1c": None,
            }
        )
    return Generated(records)


def _recipe(
    rng: random.Random, raw: Sequence[tuple[int, str]], structure_ids: Iterator[int]
) -> list[Record]:
    lines = []
    for ingredient_id, unit in rng.sample(raw, min(len(raw), rng.randint(1, 4))):
        pieces = unit == "p"
        brutto = rng.randint(1, 2) if pieces else rng.randint(10, 250)
        netto = brutto if pieces else brutto - brutto // 10
        lines.append(
            {
                "structure_id": next(structure_ids),
                "ingredient_id": ingredient_id,
                "structure_type": 1,
                "structure_unit": {"kg": "g", "l": "ml"}.get(unit, "p"),
                "structure_brutto": brutto,
                "structure_netto": netto,
                "structure_selfprice": rng.randint(100, 5000),
            }
        )
    return lines


def _spots(rng: random.Random, cost: int, cost_netto: int) -> list[Record]:
    price = max(100, round(cost * rng.uniform(2.5, 4.0) / 100) * 100)
    return [
        {
            "spot_id": spot,
            "price": price,
            "profit": price - cost,
            "profit_netto": round(price / 1.2) - cost_netto,
            "visible": int(spot == 1 or rng.random() < 0.9),
        }
        for spot in SPOT_IDS
    ]


def _products(rng: random.Random, size: int, done: Mapping[str, Generated]) -> Generated:
    categories = {
        r["category_id"]: r["category_name"]
        for r in done["product_categories"].records
        if r["category_id"] not in done["product_categories"].removed
    }
    category_ids = list(categories)
    workshops = _live_ids(done["workshops"], "workshop_id")
    live_ingredients = [r for r in done["ingredients"].records if not r["delete"]]
    goods = [r["ingredient_id"] for r in live_ingredients if r["ingredients_type"] == 2]
    raw = [
        (r["ingredient_id"], r["ingredient_unit"])
        for r in live_ingredients
        if r["ingredients_type"] == 1
    ]
    structure_ids = itertools.count(1)
    counts = {2: 0, 3: 0}
    records: list[Record] = []
    removed: set[int] = set()
    for i in range(1, size + 1):
        kind = 3 if rng.random() < 0.3 else 2
        name = _name(GOODS_NAMES if kind == 3 else DISH_NAMES, counts[kind])
        counts[kind] += 1
        category = rng.choice(category_ids) if category_ids and rng.random() > 0.05 else 0
        record: Record = {
            "barcode": "",
            "category_name": categories.get(category, ""),
            "unit": "",
            "cost": 0,
            "cost_netto": 0,
            "fiscal": 0,
            "hidden": int(rng.random() < 0.05),
            "menu_category_id": category,
            "workshop": rng.choice(workshops) if workshops else 0,
            "nodiscount": int(rng.random() < 0.1),
            "photo": "",
            "photo_origin": "",
            "product_code": "",
            "product_id": i,
            "product_name": name,
            "sort_order": 999,
            "tax_id": 0,
            "product_tax_id": 0,
            "type": kind,
            "weight_flag": 0,
            "color": rng.choice(COLORS),
            "spots": [],
            "cooking_time": 0 if kind == 3 else rng.choice((0, 300, 600, 900)),
            "fiscal_code": "",
            "out": 0,
            "product_production_description": "",
        }
        if kind == 3:
            record["ingredient_id"] = rng.choice(goods) if goods else 0
            record["barcode"] = f"482{rng.randint(10**9, 10**10 - 1)}"
            cost = rng.randint(2_000, 30_000)
        else:
            recipe = _recipe(rng, raw, structure_ids)
            record["ingredients"] = recipe
            record["out"] = sum(line["structure_netto"] for line in recipe)
            cost = sum(line["structure_selfprice"] for line in recipe)
        cost_netto = round(cost / 1.2)
        record.update(cost=cost, cost_netto=cost_netto, spots=_spots(rng, cost, cost_netto))
        records.append(record)
        if i == 7 or (i > 10 and rng.random() < 0.02):
            removed.add(i)  # removed products vanish from menu.getProducts (§2.8)
    return Generated(records, removed if size >= 10 else set())


SPOT_NAMES = ("Заведение на Мадридской", "Кафе у вокзала", "Бар на Садовой", "Кофейня")


def _venues(rng: random.Random, size: int, done: Mapping[str, Generated]) -> Generated:
    """Spots (venues), each with one or two of the live storages (all of them share the first
    live one, the way a central kitchen serves several venues)."""
    storages = [r for r in done["storages"].records if not r["delete"]]
    records = []
    for i in range(1, size + 1):
        mine = storages[:1] + ([storages[i % len(storages)]] if len(storages) > 1 else [])
        unique = {s["storage_id"]: s for s in mine}.values()
        records.append(
            {
                "spot_id": i,
                "spot_name": _name(SPOT_NAMES, i - 1),
                "spot_adress": _address(rng),
                "storages": [
                    {k: s[k] for k in ("storage_id", "storage_name", "storage_adress")}
                    for s in unique
                ],
            }
        )
    return Generated(records)


SUPPLY_HISTORY_DAYS = 120


def _supplies(rng: random.Random, size: int, done: Mapping[str, Generated]) -> Generated:
    """Deliveries over the last :data:`SUPPLY_HISTORY_DAYS` days before today (dates follow
    the day the emulator starts, so a rolling window always finds some), one to three lines
    each; supply 2 (plus a few at random) is deleted, still listed with ``delete`` 1."""
    today = datetime.date.today()
    storages = [r for r in done["storages"].records if not r["delete"]]
    suppliers = [r for r in done["suppliers"].records if not r["delete"]]
    ingredients = [r for r in done["ingredients"].records if not r["delete"]]
    records = []
    for i in range(1, size + 1):
        day = today - datetime.timedelta(days=rng.randint(0, SUPPLY_HISTORY_DAYS))
        when = f"{day.isoformat()} {rng.randint(7, 20):02d}:{rng.randint(0, 59):02d}:00"
        lines = []
        for ingredient in rng.sample(ingredients, min(len(ingredients), rng.randint(1, 3))):
            amount = rng.randint(1, 40)
            price = rng.randint(1_000, 50_000)
            lines.append(
                {
                    "ingredient_id": ingredient["ingredient_id"],
                    "product_id": 0,
                    "supply_ingredient_num": float(amount),
                    "supply_ingredient_sum": amount * price,
                    "ingredient_name": ingredient["ingredient_name"],
                    "ingredient_unit": ingredient["ingredient_unit"],
                    "pack_id": 0,
                    "type": 1,
                    "ing_delete": 0,
                    "tax_id": 0,
                }
            )
        total = sum(line["supply_ingredient_sum"] for line in lines)
        storage = storages[i % len(storages)] if storages else None
        supplier = suppliers[i % len(suppliers)] if suppliers else None
        records.append(
            {
                "supply_id": i,
                "in_inventory": 0,
                "storage_id": storage["storage_id"] if storage else 0,
                "supplier_id": supplier["supplier_id"] if supplier else 0,
                "date": when,
                "supply_sum": total,
                "supply_sum_netto": round(total / 1.2),
                "supply_comment": "Накладная" if rng.random() < 0.3 else "",
                "storage_name": storage["storage_name"] if storage else "",
                "supplier_name": supplier["supplier_name"] if supplier else "",
                "delete": int(i == 2 or rng.random() < 0.05),
                "account_id": None,
                "ingredients": lines,
            }
        )
    return Generated(records)


Generator = Callable[[random.Random, int, Mapping[str, Generated]], Generated]

# In dependency order: a generator may read the entities generated before it.
_GENERATORS: tuple[tuple[str, Generator], ...] = (
    ("suppliers", _suppliers),
    ("workshops", _workshops),
    ("storages", _storages),
    ("ingredient_categories", _ingredient_categories),
    ("product_categories", _product_categories),
    ("ingredients", _ingredients),
    ("products", _products),
    ("spots", _venues),
    ("supplies", _supplies),
)


def generate_account(
    account: EmulatorAccount, seed: int, sizes: Mapping[str, int]
) -> dict[str, Generated]:
    """Every entity's rows for ``account``; equal arguments give equal rows."""
    done: dict[str, Generated] = {}
    for entity, generator in _GENERATORS:
        rng = random.Random(f"{seed}:{account.name}:{entity}")
        done[entity] = generator(rng, sizes[entity], done)
    return done
