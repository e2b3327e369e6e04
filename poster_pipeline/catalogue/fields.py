"""Field types of Poster records and their coercion from whatever type the wire used.

Poster is inconsistent about types: list methods send ids, flags and numbers as strings
("supplier_id": "1", "delete": "0"), single getters send ints for the same fields
("category_id": 30), and a few list fields are JSON numbers ("ingredient_weight": 0)
(docs/poster-api.md §1.7). Each catalogue field names its type here and is coerced on the way in,
so everything downstream sees one Python type per column.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["COERCERS", "CoercionError", "FieldType", "coerce"]


class CoercionError(ValueError):
    """A wire value does not fit its field type (the message names the value's type only)."""


class FieldType(enum.Enum):
    """How a field is stored: the Python type of the coerced value is in each member's comment."""

    INTEGER = "integer"  # int: ids, foreign keys ("0" stays 0: Poster's "none"), counters
    TEXT = "text"  # str
    FLAG = "flag"  # bool: "0"/"1", 0/1, true/false
    MONEY = "money"  # int, minor units (kopecks): Poster's menu and storage prices
    QUANTITY = "quantity"  # Decimal: "443.45000", may be negative
    JSON = "json"  # nested lists/objects, their scalar leaves as text (see _json_leaves_as_text)
    DATETIME = "datetime"  # datetime without zone: "2017-11-17 08:09:33", the restaurant's time


_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n", ""}

# Each coercer takes any wire value (None included) and is built for the common case first: a
# full sync types every field of every object, 1.7 million values for 100,000 ingredients.


def _integer_from_text(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CoercionError("text that is not an integer") from None
    if number.is_finite() and number == number.to_integral_value():
        return int(number)
    raise CoercionError("a fractional number where an integer was expected")


def _integer(value: Any) -> int | None:
    kind = type(value)
    if kind is str:
        if "_" not in value:  # int() would read "1_000" as 1000
            try:
                return int(value)
            except ValueError:
                pass
        return _integer_from_text(value)
    if kind is int:
        return value
    if value is None:
        return None
    if kind is bool:
        return int(value)
    if kind is float:
        if value.is_integer():
            return int(value)
        raise CoercionError("a fractional number where an integer was expected")
    raise CoercionError(f"a {kind.__name__} where an integer was expected")


def _flag(value: Any) -> bool | None:
    if value == "0" or value == "1":
        return value == "1"
    if value is None:
        return None
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if type(value) is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise CoercionError(f"a {type(value).__name__} that is not a 0/1 flag")


def _quantity(value: Any) -> Decimal | None:
    kind = type(value)
    if kind is str:
        if not value.strip():
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise CoercionError("text that is not a number") from None
    elif kind is int:
        number = Decimal(value)
    elif kind is float:
        number = Decimal(repr(value))
    elif value is None:
        return None
    else:
        raise CoercionError(f"a {kind.__name__} where a quantity was expected")
    if not number.is_finite():
        raise CoercionError("a non-finite number")
    return number


def _text(value: Any) -> str | None:
    if type(value) is str:
        # PostgreSQL text cannot hold NUL; a stray one must not block the whole entity.
        return value.replace("\x00", "") if "\x00" in value else value
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise CoercionError(f"a {type(value).__name__} where text was expected")


def _json_leaves_as_text(value: Any) -> Any:
    """Nested JSON with every scalar leaf as text: ``{"price": 400}`` → ``{"price": "400"}``.

    Poster's nested lists change leaf types by endpoint too (``spots[].price`` is "400" in
    menu.getProducts and 400 in menu.getProduct), and nested shapes are too varied to type field
    by field; text leaves make one object look the same whichever endpoint sent it.
    """
    if isinstance(value, dict):
        return {key: _json_leaves_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_leaves_as_text(item) for item in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return value


_NO_DATE = {"", "0000-00-00 00:00:00", "0000-00-00"}


def _datetime(value: Any) -> datetime | None:
    """Poster's ``Y-m-d H:i:s`` (or ``Y-m-d``) in the restaurant's own time, kept without a
    zone: Poster does not say which, and guessing one would shift every figure."""
    if value is None:
        return None
    if type(value) is not str:
        raise CoercionError(f"a {type(value).__name__} where a date and time was expected")
    text = value.strip()
    if text in _NO_DATE:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CoercionError("text that is not a date and time") from None


COERCERS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.INTEGER: _integer,
    FieldType.MONEY: _integer,
    FieldType.QUANTITY: _quantity,
    FieldType.FLAG: _flag,
    FieldType.TEXT: _text,
    FieldType.JSON: _json_leaves_as_text,
    FieldType.DATETIME: _datetime,
}


def coerce(field_type: FieldType, value: Any) -> Any:
    """Coerce one wire value to ``field_type``; ``None`` (and "" for numbers) becomes ``None``.

    Raises :class:`CoercionError` when the value cannot mean what the field says, rather than
    storing a wrong number.
    """
    return COERCERS[field_type](value)
