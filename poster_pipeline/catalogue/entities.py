"""The entity catalogue: the one place that knows Poster's shapes.

Each :class:`Entity` says how to fetch a Poster entity (list method, single getter and its id
parameter), which field is its key, how every kept field is typed, which webhook ``object``
names concern it, and how a deletion shows. The client, the warehouse tables, the assets and
the webhook routing all derive from these entries; adding an entity is one entry here.

Sources are docs/poster-api.md §2 (fields and deletion) and §3.4 (webhook objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from poster_pipeline.catalogue.fields import FieldType

__all__ = ["ENTITIES", "Entity", "Field", "entity", "entity_for_webhook_object"]

INT, TEXT, FLAG, MONEY, QTY, JSON, DATETIME = (
    FieldType.INTEGER,
    FieldType.TEXT,
    FieldType.FLAG,
    FieldType.MONEY,
    FieldType.QUANTITY,
    FieldType.JSON,
    FieldType.DATETIME,
)


@dataclass(frozen=True, slots=True)
class Field:
    """One typed column, named as Poster names it on the wire."""

    name: str
    type: FieldType
    description: str = ""


@dataclass(frozen=True, slots=True)
class Entity:
    """A Poster entity synced into one warehouse table.

    ``delete_flag`` is the wire field that marks a soft-deleted row still listed by Poster
    (``delete``: "1"); entities without one simply vanish from the list. In a full sync both a
    set flag and an absence mark the row deleted.
    """

    name: str
    description: str
    list_method: str
    key: str
    fields: tuple[Field, ...]
    single_method: str | None = None
    single_param: str | None = None
    webhook_objects: tuple[str, ...] = ()
    delete_flag: str | None = None
    #: Parameters every list call sends (stock: ``zero_leftovers=true``, else zeros are left out).
    list_params: tuple[tuple[str, str], ...] = ()
    #: The field Poster lists the entity one value at a time by, passed as the list call's
    #: parameter of the same name (stock: ``storage_id``). Rows are keyed by (scope, key); the
    #: scope's list is the unit a full or partial sync replaces; Poster's rows do not carry
    #: the scope, so it is filled in from the parameter.
    scope: str | None = None
    #: The date field of an entity Poster lists only by date window (supplies: ``date``;
    #: ``dateFrom``/``dateTo`` as ``Ymd``, inclusive): a sync reads a window and judges
    #: absence only inside it.
    window_field: str | None = None
    #: The ``data`` field that names the object a webhook asks to re-fetch, where ``object_id``
    #: does not (stock: ``data.storage_id``, the storage whose list is re-fetched).
    webhook_data_id: str | None = None
    #: Money fields the single getter answers in major units where the list uses minor units
    #: (``storage.getSupply``'s ``supply_sum`` "6698828.90" against "669882890"): scaled to
    #: minor units before typing.
    single_major_units: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return self.name

    @property
    def keys(self) -> tuple[str, ...]:
        """The Poster columns of the primary key after ``account``."""
        return (self.scope, self.key) if self.scope else (self.key,)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"{self.name} has no field {name!r}")


ENTITIES: tuple[Entity, ...] = (
    Entity(
        name="suppliers",
        description="Suppliers (поставщики). Poster has no single getter and no webhook for "
        "them, so every change is picked up by a full list fetch.",
        list_method="storage.getSuppliers",
        key="supplier_id",
        delete_flag="delete",
        # Poster sends no supplier webhooks; `supplier` is accepted for compatibility with the
        # seed project's `supplier.*` hooks (docs/design.md, entity table).
        webhook_objects=("supplier",),
        fields=(
            Field("supplier_id", INT, "Poster id"),
            Field("supplier_name", TEXT),
            Field("supplier_phone", TEXT),
            Field("supplier_adress", TEXT, "address (Poster's spelling)"),
            Field("supplier_comment", TEXT),
            Field("supplier_code", TEXT, "legal-entity code (EDRPOU)"),
            Field("supplier_tin", TEXT, "tax id"),
        ),
    ),
    Entity(
        name="ingredients",
        description="Ingredients (ингредиенты) with total stock across storages.",
        list_method="menu.getIngredients",
        single_method="menu.getIngredient",
        single_param="ingredient_id",
        key="ingredient_id",
        delete_flag="delete",
        webhook_objects=("ingredient",),
        fields=(
            Field("ingredient_id", INT, "Poster id"),
            Field("ingredient_name", TEXT),
            Field("ingredient_barcode", TEXT),
            Field("category_id", INT, "ingredient category (0 = none)"),
            Field("ingredient_left", QTY, "total stock over all storages; may be negative"),
            Field("limit_value", QTY, "low-stock threshold"),
            Field("time_notif", INT, "time of the last low-stock notification"),
            Field("ingredient_unit", TEXT, "kg, l or p (pieces)"),
            Field("ingredient_weight", QTY, "weight of one piece"),
            Field("ingredients_losses_clear", QTY, "loss % when cleaning"),
            Field("ingredients_losses_cook", QTY, "loss % when cooking"),
            Field("ingredients_losses_fry", QTY, "loss % when frying"),
            Field("ingredients_losses_stew", QTY, "loss % when stewing"),
            Field("ingredients_losses_bake", QTY, "loss % when baking"),
            Field("ingredients_type", INT, "1 ingredient, 2 system ingredient of a product"),
            Field("partial_write_off", FLAG),
            Field("hidden", FLAG),
        ),
    ),
    Entity(
        name="ingredient_categories",
        description="Ingredient categories. Their ids are a namespace of their own: id 4 here "
        "is not product category 4.",
        list_method="menu.getCategoriesIngredients",
        single_method="menu.getCategoryIngredients",
        single_param="category_id",
        key="category_id",
        webhook_objects=("ingredients_category",),
        fields=(
            Field("category_id", INT, "Poster id (ingredient-category namespace)"),
            # The docs' table says category_name, the example and live reads say name (§2.3).
            Field("name", TEXT),
        ),
    ),
    Entity(
        name="product_categories",
        description="Menu (product and dish) categories, a tree through parent_category.",
        list_method="menu.getCategories",
        single_method="menu.getCategory",
        single_param="category_id",
        key="category_id",
        webhook_objects=("category",),
        fields=(
            Field("category_id", INT, "Poster id (menu-category namespace)"),
            Field("category_name", TEXT),
            Field("category_photo", TEXT),
            Field("parent_category", INT, "parent category (0 = root)"),
            Field("category_color", TEXT),
            Field("category_hidden", FLAG),
            Field("sort_order", INT),
            Field("fiscal", FLAG),
            Field("nodiscount", FLAG),
            Field("tax_id", INT),
            Field("left", INT, "nested-set left bound"),
            Field("right", INT, "nested-set right bound"),
            Field("level", INT, "depth in the tree"),
            Field("category_tag", TEXT),
        ),
    ),
    Entity(
        name="workshops",
        description="Workshops (цеха): the kitchen and bar sections products are prepared in.",
        list_method="menu.getWorkshops",
        single_method="menu.getWorkshop",
        single_param="workshop_id",
        key="workshop_id",
        delete_flag="delete",
        webhook_objects=("workshop",),
        fields=(
            Field("workshop_id", INT, "Poster id"),
            Field("workshop_name", TEXT),
        ),
    ),
    Entity(
        name="storages",
        description="Storages (склады) that hold the stock.",
        list_method="storage.getStorages",
        single_method="storage.getStorage",
        single_param="storage_id",
        key="storage_id",
        delete_flag="delete",
        webhook_objects=("storage",),
        fields=(
            Field("storage_id", INT, "Poster id"),
            Field("storage_name", TEXT),
            Field("storage_adress", TEXT, "address (Poster's spelling)"),
        ),
    ),
    Entity(
        name="products",
        description="Products and dishes (товары и тех. карты) with prices per spot, "
        "modifiers and recipes.",
        list_method="menu.getProducts",
        single_method="menu.getProduct",
        single_param="product_id",
        key="product_id",
        webhook_objects=("product", "dish"),
        fields=(
            Field("product_id", INT, "Poster id"),
            Field("product_name", TEXT),
            Field("type", INT, "1 prepack, 2 dish, 3 product"),
            Field("menu_category_id", INT, "product category (0 = main screen)"),
            Field("category_name", TEXT),
            Field("workshop", INT, "workshop id (0 = none)"),
            Field("ingredient_id", INT, "stock ingredient of a product sold as goods"),
            Field("cost", MONEY, "cost price, minor units"),
            Field("cost_netto", MONEY, "cost price without tax, minor units"),
            Field("barcode", TEXT),
            Field("product_code", TEXT),
            Field("unit", TEXT),
            Field("fiscal", FLAG),
            Field("fiscal_code", TEXT),
            Field("nodiscount", FLAG),
            Field("hidden", FLAG),
            Field("tax_id", INT),
            Field("product_tax_id", INT),
            Field("weight_flag", FLAG, "sold by weight"),
            Field("color", TEXT),
            Field("photo", TEXT),
            Field("photo_origin", TEXT),
            Field("sort_order", INT),
            Field("cooking_time", INT),
            Field("out", QTY, "dish yield (netto); 0 for products"),
            Field("spots", JSON, "price, profit and visibility per spot; money in minor units"),
            Field("modifications", JSON, "product modifiers"),
            Field("group_modifications", JSON, "dish modifier groups"),
            Field("ingredients", JSON, "recipe lines of a dish or prepack"),
        ),
    ),
    Entity(
        name="spots",
        description="Spots (заведения): the venues, each with the storages it uses.",
        list_method="access.getSpots",
        key="spot_id",
        # access.getSpots is the only method with the spot → storages mapping; spots.getSpot
        # answers another shape (docs/poster-api.md §2.9), so spots have no single getter here.
        webhook_objects=("spot",),
        fields=(
            Field("spot_id", INT, "Poster id"),
            Field("spot_name", TEXT),
            Field("spot_adress", TEXT, "address (Poster's spelling)"),
            Field("storages", JSON, "the spot's storages: storage_id, storage_name, address"),
        ),
    ),
    Entity(
        name="stock",
        description="Stock (остатки): the balance of every ingredient and product on every "
        "storage, zero balances included. The total over all storages is "
        "ingredients.ingredient_left.",
        list_method="storage.getStorageLeftovers",
        key="ingredient_id",
        scope="storage_id",
        list_params=(("zero_leftovers", "true"),),
        # A `stock` hook's object_id is the element; data.storage_id names the storage whose
        # list is re-fetched (docs/poster-api.md §3.3).
        webhook_objects=("stock",),
        webhook_data_id="storage_id",
        fields=(
            Field("ingredient_id", INT, "Poster id of the ingredient or product"),
            Field("storage_id", INT, "the storage (the list call's storage_id)"),
            Field("ingredient_name", TEXT),
            Field("storage_ingredient_left", QTY, "balance on this storage; may be negative"),
            Field("limit_value", QTY, "low-stock threshold"),
            Field("ingredient_unit", TEXT, "kg, l or p (pieces)"),
            Field("ingredients_type", INT, "1 ingredient, 2 product or modifier"),
            Field("storage_ingredient_sum", MONEY, "value on this storage, minor units"),
            Field("storage_ingredient_sum_netto", MONEY, "value without tax, minor units"),
            Field("prime_cost", MONEY, "unit cost, minor units"),
            Field("prime_cost_netto", MONEY, "unit cost without tax, minor units"),
            Field("hidden", FLAG),
        ),
    ),
    Entity(
        name="supplies",
        description="Supplies (поставки): deliveries from suppliers to storages, with their sums.",
        list_method="storage.getSupplies",
        single_method="storage.getSupply",
        single_param="supply_id",
        key="supply_id",
        delete_flag="delete",
        window_field="date",
        webhook_objects=("supply",),
        single_major_units=("supply_sum",),
        # Only fields both methods answer are typed (the list's storage_name and
        # supply_sum_netto, the getter's ingredients and in_inventory stay in raw), so a row
        # does not change back and forth with the method that last read it.
        fields=(
            Field("supply_id", INT, "Poster id"),
            Field("storage_id", INT, "the storage delivered to"),
            Field("supplier_id", INT),
            Field("date", DATETIME, "when it was delivered, the restaurant's local time"),
            Field("supply_sum", MONEY, "sum, minor units (storage.getSupply's major units too)"),
            Field("supply_comment", TEXT),
            Field("supplier_name", TEXT),
            Field("account_id", INT, "the finance account it was paid from"),
        ),
    ),
)

_BY_NAME: Mapping[str, Entity] = {e.name: e for e in ENTITIES}
_BY_WEBHOOK_OBJECT: Mapping[str, Entity] = {o: e for e in ENTITIES for o in e.webhook_objects}


def entity(name: str) -> Entity:
    """The catalogue entry called ``name``; the error lists the valid names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {', '.join(_BY_NAME)}") from None


def entity_for_webhook_object(obj: str) -> Entity | None:
    """The entity a webhook ``object`` concerns, or ``None`` for objects this pipeline ignores."""
    return _BY_WEBHOOK_OBJECT.get(obj)
