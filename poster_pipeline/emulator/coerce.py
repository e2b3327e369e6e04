"""Control-API bodies → canonical records, or a :class:`FieldError` the API answers with 422.

The control API is for tests and demos, so it is strict: an unknown field, a value of the
wrong kind or a field the emulator owns (the id, the ``delete`` flag, derived copies) is
refused with a message naming it, rather than silently stored and served in a shape Poster
would never send. Numbers may come as JSON numbers or as the strings Poster itself uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from poster_pipeline.emulator.entities import EntitySpec, Field, Kind

__all__ = ["FieldError", "new_record", "patched_record"]

Record = dict[str, Any]

_INTEGER = re.compile(r"^-?\d+$")


class FieldError(ValueError):
    """A field that does not fit its entity; the message names it."""


def _integer(field: Field, value: Any, where: str) -> int:
    if isinstance(value, bool) and not field.flag:
        raise FieldError(f"{where}: expected an integer, got a boolean")
    integral = (
        isinstance(value, int)
        or (isinstance(value, float) and value.is_integer())
        or (isinstance(value, str) and _INTEGER.match(value.strip()) is not None)
    )
    if not integral:
        raise FieldError(f"{where}: expected an integer, got {value!r}")
    number = int(value)
    if field.flag and number not in (0, 1):
        raise FieldError(f"{where}: a flag is 0 or 1, got {number}")
    return number


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    try:
        number = float(value) if isinstance(value, float | str) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise FieldError(f"{where}: expected a finite number, got {value!r}")
    return number


def _rows(field: Field, value: Any, where: str) -> list[Record]:
    if not isinstance(value, list) or not all(isinstance(row, Mapping) for row in value):
        raise FieldError(f"{where}: expected a list of objects")
    known = {f.name: f for f in field.rows}
    rows = []
    for index, row in enumerate(value):
        unknown = set(row) - set(known)
        if unknown:
            raise FieldError(f"{where}[{index}]: unknown field(s) {sorted(unknown)}")
        rows.append(
            {
                name: coerce_value(sub, row[name], f"{where}[{index}].{name}")
                if name in row
                else sub.new_default()
                for name, sub in known.items()
            }
        )
    return rows


def coerce_value(field: Field, value: Any, where: str | None = None) -> Any:
    """``value`` as the canonical value of ``field``; raises :class:`FieldError`."""
    where = where or field.name
    if field.kind is Kind.INT:
        result: Any = _integer(field, value, where)
    elif field.kind is Kind.QUANTITY:
        result = round(float(_number(value, where)), 5)
    elif field.kind is Kind.NUMBER:
        result = _number(value, where)
    elif field.kind is Kind.ROWS:
        result = _rows(field, value, where)
    elif isinstance(value, str) or (value is None and field.kind is Kind.NULLABLE_TEXT):
        result = value
    else:
        raise FieldError(f"{where}: expected text, got {value!r}")
    if field.choices and result not in field.choices:
        raise FieldError(f"{where}: must be one of {list(field.choices)}, got {result!r}")
    return result


def _check_settable(spec: EntitySpec, body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise FieldError("the body must be a JSON object of fields")
    for name in body:
        field = spec.get_field(name)
        if field is None:
            raise FieldError(f"{spec.name} has no field {name!r}")
        if name == spec.id_field:
            raise FieldError(f"{name} is assigned by the emulator")
        if name == "delete":
            raise FieldError("delete is set by DELETE and cleared by POST …/restore")
        if field.lookup is not None:
            raise FieldError(f"{name} is copied from {field.lookup.entity}; set {field.lookup.via}")
    return body


def _applies(field: Field, record: Mapping[str, Any]) -> bool:
    return field.product_type is None or record.get("type") == field.product_type


def _product_type(spec: EntitySpec, body: Mapping[str, Any], current: int | None) -> int | None:
    """The ``type`` a product will have (None for entities without one)."""
    type_field = spec.get_field("type")
    if type_field is None:
        return None
    if "type" not in body:
        return current if current is not None else type_field.default
    return coerce_value(type_field, body["type"])


def new_record(spec: EntitySpec, body: Any, new_id: int) -> Record:
    """A complete record from ``body`` and the defaults, with id ``new_id``."""
    body = _check_settable(spec, body)
    name = body.get(spec.name_field)
    if not isinstance(name, str) or not name.strip():
        raise FieldError(f"{spec.name_field} is required")
    product_type = _product_type(spec, body, None)
    shape = {} if product_type is None else {"type": product_type}
    record: Record = {}
    for field in spec.fields:
        if not _applies(field, shape):
            if field.name in body:
                raise FieldError(f"{field.name} only exists on type {field.product_type}")
        elif field.name in body:
            record[field.name] = coerce_value(field, body[field.name])
        else:
            record[field.name] = field.new_default()
    record[spec.id_field] = new_id
    return record


def patched_record(spec: EntitySpec, record: Mapping[str, Any], body: Any) -> Record:
    """A copy of ``record`` with ``body``'s fields changed."""
    body = _check_settable(spec, body)
    if _product_type(spec, body, record.get("type")) != record.get("type"):
        raise FieldError("type cannot change; remove the object and create another")
    changed = dict(record)
    for name, value in body.items():
        field = spec.get_field(name)
        assert field is not None  # checked by _check_settable
        if not _applies(field, record):
            raise FieldError(f"{name} only exists on type {field.product_type}")
        changed[name] = coerce_value(field, value)
    if not str(changed[spec.name_field]).strip():
        raise FieldError(f"{spec.name_field} must not be empty")
    return changed
