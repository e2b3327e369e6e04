"""The emulator's description of Poster's entities: fields, wire kinds, methods, deletion.

This is deliberately independent of :mod:`poster_pipeline.catalogue`: the emulator plays
Poster, so it states Poster's shapes from docs/poster-api.md §2 on its own and the pipeline's
catalogue is tested against it rather than copied into it.

Canonical values (what the control API shows and accepts) are plain JSON types: ints for
ids, references, flags and money (minor units), floats for stock quantities, strings for text,
lists of row objects for nested arrays. :mod:`.wire` turns them into Poster's two wire styles.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ENTITIES",
    "LEFTOVERS",
    "METHODS",
    "PRODUCTS",
    "SPOT_IDS",
    "SUPPLIES",
    "EntitySpec",
    "Field",
    "Kind",
    "Lookup",
]

# Products and categories carry per-spot rows for these spots, whatever the number of spots
# served by access.getSpots (two by default, these two).
SPOT_IDS: tuple[int, ...] = (1, 2)


class Kind(enum.Enum):
    """How a canonical value travels (docs/poster-api.md §1.7)."""

    INT = "int"  # lists: "12"; single getters: 12
    QUANTITY = "quantity"  # lists: "443.45000" (5 decimals); single getters: 443.45
    NUMBER = "number"  # a JSON number everywhere (ingredient_weight, out)
    TEXT = "text"  # a string everywhere
    NULLABLE_TEXT = "nullable_text"  # a string or null (id_1c, category_tag)
    ROWS = "rows"  # an array of objects whose fields follow the same rules


@dataclass(frozen=True)
class Lookup:
    """A read-only field copied from another entity, e.g. a product's ``category_name``.

    Poster denormalises it into the product row; the emulator keeps the copy in step when
    either the reference or the referenced name changes.
    """

    via: str
    entity: str
    field: str


@dataclass(frozen=True)
class Field:
    """One field of an entity, in Poster's wire order.

    ``in_list`` false means only the single getter shows it; ``product_type`` limits it to
    products of that ``type`` (3 products have ``ingredient_id``, 2 dishes a recipe);
    ``references`` names the entity an id points at (0 means none).
    """

    name: str
    kind: Kind
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    flag: bool = False
    choices: tuple[Any, ...] = ()
    rows: tuple[Field, ...] = ()
    in_list: bool = True
    product_type: int | None = None
    references: str | None = None
    lookup: Lookup | None = None
    #: Money the single getter sends in major units ("6698828.90") where the list sends
    #: kopecks ("669882890"): storage.getSupply's supply_sum (docs/poster-api.md §2.10).
    major_in_single: bool = False

    def new_default(self) -> Any:
        """A fresh default value (row lists must not be shared between records)."""
        return self.default_factory() if self.default_factory is not None else self.default


@dataclass(frozen=True, eq=False)  # identity equality: specs are singletons, hashed as keys
class EntitySpec:
    """What the emulator needs to know to store, serve and announce one entity.

    ``soft_delete``: a removed object stays listed with ``delete`` "1" (suppliers, workshops,
    storages, ingredients); otherwise it vanishes from the list and its getter answers
    ``{"response": false}``. ``missing_is_error``: the single getter answers error 32 for an
    unknown id instead of ``{"response": false}`` (the storage section's style).
    ``webhook_object`` is the hook ``object``; ``webhook_object_by_type`` overrides it by the
    record's ``type`` (products: ``product``, dishes: ``dish``). Suppliers have neither
    (docs/poster-api.md §3.4).
    """

    name: str
    id_field: str
    name_field: str
    list_method: str
    fields: tuple[Field, ...]
    single_method: str | None = None
    single_param: str | None = None
    soft_delete: bool = False
    missing_is_error: bool = False
    #: The single getter answers error 32 for a soft-deleted object (which the list shows).
    single_hides_deleted: bool = False
    webhook_object: str | None = None
    webhook_object_by_type: Mapping[int, str] = field(default_factory=dict)

    def get_field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def hook_object(self, record: Mapping[str, Any]) -> str | None:
        """The webhook ``object`` announcing a change of ``record``, or None (no hook)."""
        return self.webhook_object_by_type.get(record.get("type", 0), self.webhook_object)


def _flag(name: str, default: int = 0, *, in_list: bool = True) -> Field:
    return Field(name, Kind.INT, default, flag=True, in_list=in_list)


def _text(name: str, default: str = "") -> Field:
    return Field(name, Kind.TEXT, default)


def _int(name: str, default: int = 0, *, references: str | None = None) -> Field:
    return Field(name, Kind.INT, default, references=references)


def _spot_prices() -> list[dict[str, int]]:
    return [
        {"spot_id": spot, "price": 0, "profit": 0, "profit_netto": 0, "visible": 1}
        for spot in SPOT_IDS
    ]


def _spot_visibility() -> list[dict[str, int]]:
    return [{"spot_id": spot, "visible": 1} for spot in SPOT_IDS]


SUPPLIERS = EntitySpec(
    name="suppliers",
    id_field="supplier_id",
    name_field="supplier_name",
    list_method="storage.getSuppliers",
    soft_delete=True,
    fields=(
        _int("supplier_id"),
        _text("supplier_name"),
        _text("supplier_phone"),
        _text("supplier_adress"),  # sic (§1.7)
        _text("supplier_comment"),
        _text("supplier_code"),
        _text("supplier_tin"),
        _flag("delete"),
    ),
)

INGREDIENTS = EntitySpec(
    name="ingredients",
    id_field="ingredient_id",
    name_field="ingredient_name",
    list_method="menu.getIngredients",
    single_method="menu.getIngredient",
    single_param="ingredient_id",
    soft_delete=True,
    webhook_object="ingredient",
    fields=(
        _int("ingredient_id"),
        _text("ingredient_name"),
        _text("ingredient_barcode"),
        _int("category_id", references="ingredient_categories"),
        Field("ingredient_left", Kind.QUANTITY, 0.0),
        _int("limit_value"),
        _int("time_notif"),
        Field("ingredient_unit", Kind.TEXT, "kg", choices=("kg", "l", "p")),
        Field("ingredient_weight", Kind.NUMBER, 0),  # a JSON number even in the list (§2.2)
        _int("ingredients_losses_clear"),
        _int("ingredients_losses_cook"),
        _int("ingredients_losses_fry"),
        _int("ingredients_losses_stew"),
        _int("ingredients_losses_bake"),
        Field("ingredients_type", Kind.INT, 1, choices=(1, 2)),
        _flag("partial_write_off"),
        _flag("delete"),
        _flag("hidden"),
        # The single getter's example shows the 1C id (§2.2); the list only has it with id_1c.
        Field("id_1c", Kind.NULLABLE_TEXT, None, in_list=False),
    ),
)

INGREDIENT_CATEGORIES = EntitySpec(
    name="ingredient_categories",
    id_field="category_id",
    name_field="name",  # `name`, not `category_name` (§2.3)
    list_method="menu.getCategoriesIngredients",
    single_method="menu.getCategoryIngredients",
    single_param="category_id",
    webhook_object="ingredients_category",
    fields=(
        _int("category_id"),
        _text("name"),
        Field("id_1c", Kind.NULLABLE_TEXT, None),
    ),
)

PRODUCT_CATEGORIES = EntitySpec(
    name="product_categories",
    id_field="category_id",
    name_field="category_name",
    list_method="menu.getCategories",
    single_method="menu.getCategory",
    single_param="category_id",
    webhook_object="category",
    fields=(
        _int("category_id"),
        _text("category_name"),
        _text("category_photo"),
        _int("parent_category", references="product_categories"),
        _text("category_color", "white"),
        _flag("category_hidden"),
        _int("sort_order", 999),
        _flag("fiscal"),
        _flag("nodiscount"),
        _int("tax_id"),
        _int("left"),
        _int("right"),
        _int("level", 1),
        Field("category_tag", Kind.NULLABLE_TEXT, None),
        # getCategory adds these two (§2.4).
        Field("category_photo_origin", Kind.TEXT, "", in_list=False),
        Field(
            "visible",
            Kind.ROWS,
            default_factory=_spot_visibility,
            rows=(_int("spot_id"), _flag("visible", 1)),
            in_list=False,
        ),
    ),
)

WORKSHOPS = EntitySpec(
    name="workshops",
    id_field="workshop_id",
    name_field="workshop_name",
    list_method="menu.getWorkshops",
    single_method="menu.getWorkshop",
    single_param="workshop_id",
    soft_delete=True,
    webhook_object="workshop",
    fields=(_int("workshop_id"), _text("workshop_name"), _flag("delete")),
)

STORAGES = EntitySpec(
    name="storages",
    id_field="storage_id",
    name_field="storage_name",
    list_method="storage.getStorages",
    single_method="storage.getStorage",
    single_param="storage_id",
    soft_delete=True,
    missing_is_error=True,
    webhook_object="storage",
    fields=(
        _int("storage_id"),
        _text("storage_name"),
        _text("storage_adress"),  # sic (§1.7)
        _flag("delete"),
    ),
)

RECIPE_LINE: tuple[Field, ...] = (
    _int("structure_id"),
    _int("ingredient_id", references="ingredients"),
    Field("structure_type", Kind.INT, 1, choices=(1, 2)),  # 1 ingredient, 2 prepack
    Field("structure_unit", Kind.TEXT, "kg", choices=("kg", "l", "p", "g", "ml")),
    Field("structure_brutto", Kind.NUMBER, 0),
    Field("structure_netto", Kind.NUMBER, 0),
    _int("structure_selfprice"),
)

PRODUCTS = EntitySpec(
    name="products",
    id_field="product_id",
    name_field="product_name",
    list_method="menu.getProducts",
    single_method="menu.getProduct",
    single_param="product_id",
    webhook_object="product",
    webhook_object_by_type=MappingProxyType({2: "dish", 3: "product"}),
    fields=(
        _text("barcode"),
        Field(
            "category_name",
            Kind.TEXT,
            "",
            lookup=Lookup(
                via="menu_category_id", entity="product_categories", field="category_name"
            ),
        ),
        _text("unit"),
        _int("cost"),  # money, minor units (§1.7)
        _int("cost_netto"),
        _flag("fiscal"),
        _flag("hidden"),
        _int("menu_category_id", references="product_categories"),
        _int("workshop", references="workshops"),
        _flag("nodiscount"),
        _text("photo"),
        _text("photo_origin"),
        _text("product_code"),
        _int("product_id"),
        _text("product_name"),
        _int("sort_order", 999),
        _int("tax_id"),
        _int("product_tax_id"),
        Field("type", Kind.INT, 3, choices=(2, 3)),  # 2 dish, 3 product (§2.8)
        _flag("weight_flag"),
        _text("color", "white"),
        Field(
            "spots",
            Kind.ROWS,
            default_factory=_spot_prices,
            rows=(
                _int("spot_id"),
                _int("price"),
                _int("profit"),
                _int("profit_netto"),
                _flag("visible", 1),
            ),
        ),
        Field("ingredient_id", Kind.INT, 0, product_type=3, references="ingredients"),
        _int("cooking_time"),
        _text("fiscal_code"),
        Field("out", Kind.NUMBER, 0),  # a JSON number even in the list (§2.8)
        _text("product_production_description"),
        Field("ingredients", Kind.ROWS, default_factory=list, rows=RECIPE_LINE, product_type=2),
    ),
)

SPOTS = EntitySpec(
    name="spots",
    id_field="spot_id",
    name_field="spot_name",
    list_method="access.getSpots",
    # spots.getSpot answers another shape (§2.9); removed spots vanish from the list.
    webhook_object="spot",
    fields=(
        _int("spot_id"),
        _text("spot_name"),
        _text("spot_adress"),  # sic (§2.9)
        Field(
            "storages",
            Kind.ROWS,
            default_factory=list,
            # A JSON number even in the list: "storage_id":1 in the docs' example (§2.9).
            rows=(
                Field("storage_id", Kind.NUMBER, 0, references="storages"),
                _text("storage_name"),
                _text("storage_adress"),
            ),
        ),
    ),
)

SUPPLY_LINE: tuple[Field, ...] = (
    _int("ingredient_id", references="ingredients"),
    _int("product_id"),
    Field("supply_ingredient_num", Kind.QUANTITY, 0.0),
    _int("supply_ingredient_sum"),
    _text("ingredient_name"),
    Field("ingredient_unit", Kind.TEXT, "kg", choices=("kg", "l", "p")),
    _int("pack_id"),
    Field("type", Kind.NUMBER, 1),  # a JSON number in the docs' example, beside strings
    _flag("ing_delete"),
    _int("tax_id"),
)

SUPPLIES = EntitySpec(
    name="supplies",
    id_field="supply_id",
    name_field="supply_comment",
    list_method="storage.getSupplies",
    single_method="storage.getSupply",
    single_param="supply_id",
    soft_delete=True,
    missing_is_error=True,
    single_hides_deleted=True,
    webhook_object="supply",
    fields=(
        _int("supply_id"),
        _flag("in_inventory", in_list=False),
        _int("storage_id", references="storages"),
        _int("supplier_id", references="suppliers"),
        _text("date"),  # "2017-11-17 08:09:33"
        Field("supply_sum", Kind.INT, 0, major_in_single=True),
        _int("supply_sum_netto"),
        _text("supply_comment"),
        Field(
            "storage_name",
            Kind.TEXT,
            "",
            lookup=Lookup(via="storage_id", entity="storages", field="storage_name"),
        ),
        Field(
            "supplier_name",
            Kind.TEXT,
            "",
            lookup=Lookup(via="supplier_id", entity="suppliers", field="supplier_name"),
        ),
        _flag("delete"),
        Field("account_id", Kind.NULLABLE_TEXT, None),  # null in the docs' list example
        Field("ingredients", Kind.ROWS, default_factory=list, rows=SUPPLY_LINE, in_list=False),
    ),
)

# Stock is no entity store (balances per storage and ingredient, see .stock); this spec only
# shapes storage.getStorageLeftovers' rows (§2.7).
LEFTOVERS = EntitySpec(
    name="stock",
    id_field="ingredient_id",
    name_field="ingredient_name",
    list_method="storage.getStorageLeftovers",
    fields=(
        Field("ingredient_id", Kind.INT, 0),
        Field("ingredient_name", Kind.TEXT, ""),
        Field("ingredient_left", Kind.QUANTITY, 0.0),
        Field("limit_value", Kind.INT, 0),
        Field("ingredient_unit", Kind.TEXT, "kg"),
        Field("ingredients_type", Kind.INT, 1),
        # Only with storage_id (§2.7): absent from a row, absent from the answer.
        Field("storage_ingredient_left", Kind.QUANTITY, 0.0),
        Field("storage_ingredient_sum", Kind.INT, 0),
        Field("storage_ingredient_sum_netto", Kind.INT, 0),
        Field("prime_cost", Kind.NUMBER, 0),  # a JSON number in the docs' example
        Field("prime_cost_netto", Kind.NUMBER, 0),
        Field("hidden", Kind.INT, 0, flag=True),
    ),
)


ENTITIES: Mapping[str, EntitySpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            SUPPLIERS,
            INGREDIENTS,
            INGREDIENT_CATEGORIES,
            PRODUCT_CATEGORIES,
            WORKSHOPS,
            STORAGES,
            PRODUCTS,
            SPOTS,
            SUPPLIES,
        )
    }
)


# Every Web API method served: name → (entity, whether it is the list method). Names are
# case-sensitive, as on Poster (§1.1); `storage.getSupplier` does not exist (§2.1).
METHODS: Mapping[str, tuple[EntitySpec, bool]] = MappingProxyType(
    {
        **{spec.list_method: (spec, True) for spec in (*ENTITIES.values(), LEFTOVERS)},
        **{
            spec.single_method: (spec, False)
            for spec in ENTITIES.values()
            if spec.single_method is not None
        },
    }
)
