"""Canonical records → Poster's JSON, in its two styles.

List methods send ids, flags and money as strings and quantities as 5-decimal strings
("443.45000"); single getters send the same fields as JSON numbers (docs/poster-api.md §1.7).
A few fields are JSON numbers in both (``ingredient_weight``, ``out``). Nested rows
(``spots``, recipe ``ingredients``) follow the style of the answer they are in.

Serialisation is on the hot path of a 100,000-row list, so each entity's field converters are
resolved once into a flat plan instead of dispatching on :class:`Kind` per value.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from poster_pipeline.emulator.entities import EntitySpec, Field, Kind

__all__ = ["dumps", "list_row", "single_object"]

Converter = Callable[[Any], Any] | None  # None: the canonical value goes out as it is
Plan = tuple[tuple[str, Converter], ...]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, Cyrillic unescaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _quantity_text(value: float) -> str:
    return f"{value:.5f}"


def _major_units(kopecks: int) -> str:
    """669882890 → "6698828.90" (storage.getSupply's supply_sum)."""
    sign = "-" if kopecks < 0 else ""
    whole, cents = divmod(abs(kopecks), 100)
    return f"{sign}{whole}.{cents:02d}"


def _plan(fields: tuple[Field, ...], *, as_list: bool) -> Plan:
    steps: list[tuple[str, Converter]] = []
    for field in fields:
        if as_list and not field.in_list:
            continue
        converter: Converter = None
        if field.kind is Kind.ROWS:
            converter = _rows_converter(_plan(field.rows, as_list=as_list))
        elif not as_list and field.major_in_single:
            converter = _major_units
        elif as_list and field.kind is Kind.INT:
            converter = str
        elif as_list and field.kind is Kind.QUANTITY:
            converter = _quantity_text
        steps.append((field.name, converter))
    return tuple(steps)


def _rows_converter(plan: Plan) -> Callable[[Any], Any]:
    def convert(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [_apply(plan, row) for row in rows]

    return convert


def _apply(plan: Plan, record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, converter in plan:
        # Absent keys are fields of the other product type (ingredient_id vs a recipe).
        if name in record:
            value = record[name]
            out[name] = value if converter is None or value is None else converter(value)
    return out


@cache
def _list_plan(spec: EntitySpec) -> Plan:
    return _plan(spec.fields, as_list=True)


@cache
def _single_plan(spec: EntitySpec) -> Plan:
    return _plan(spec.fields, as_list=False)


def list_row(spec: EntitySpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as one element of the entity's list method."""
    return _apply(_list_plan(spec), record)


def single_object(spec: EntitySpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as the entity's single getter answers it."""
    return _apply(_single_plan(spec), record)
