"""Typed records: a Poster object coerced by its catalogue entry, with the raw record kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from poster_pipeline.catalogue import COERCERS, CoercionError, Entity, FieldType, coerce

__all__ = ["PosterRecord", "RecordError", "to_record"]


class RecordError(ValueError):
    """A Poster object that cannot be typed (no key, or a value that does not fit its field)."""


@dataclass(frozen=True, slots=True)
class PosterRecord:
    """One Poster object as the pipeline stores it.

    ``values`` holds every catalogue field, coerced (a field Poster left out is ``None``);
    ``raw`` is the object exactly as Poster sent it, so fields the catalogue does not type are
    never lost; ``is_deleted`` is Poster's own soft-delete flag (absence is judged by the sync).
    """

    entity: str
    id: int
    values: Mapping[str, Any]
    raw: Mapping[str, Any]
    is_deleted: bool = False


_Coercers = tuple[tuple[str, Callable[[Any], Any]], ...]
_coercers_by_entity: dict[str, _Coercers] = {}


def _coercers(entity: Entity) -> _Coercers:
    """Each field's coercer, looked up once per entity (keyed by name: hashing the whole
    frozen entry on every record would cost more than the typing)."""
    found = _coercers_by_entity.get(entity.name)
    if found is None:
        found = tuple((field.name, COERCERS[field.type]) for field in entity.fields)
        _coercers_by_entity[entity.name] = found
    return found


def _minor_units(entity: Entity, name: str, value: Any) -> Any:
    """A money value sent in major units ("6698828.90") as minor units (669882890)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value  # the field's own coercion names the problem
    try:
        minor = Decimal(str(value).strip()) * 100
    except InvalidOperation:
        return value
    if not minor.is_finite() or minor != minor.to_integral_value():
        raise RecordError(f"{entity.name}: field {name!r} is not a whole number of kopecks")
    return int(minor)


def to_record(
    entity: Entity,
    raw: Mapping[str, Any],
    *,
    scope_id: int | None = None,
    major_units: tuple[str, ...] = (),
) -> PosterRecord:
    """Type ``raw`` by ``entity``'s fields. Raises :class:`RecordError` naming field and id.

    ``scope_id`` is the value of the entity's scope field (stock: the ``storage_id`` the list
    was asked for), which Poster's rows do not carry; ``major_units`` names money fields this
    answer sends in major units (``storage.getSupply``'s ``supply_sum``), typed in minor units
    like the list's. ``raw`` stays as Poster sent it.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"{entity.name}: expected an object, got {type(raw).__name__}")
    get = raw.get
    if entity.scope is not None or major_units:
        source = dict(raw)
        if entity.scope is not None:
            if scope_id is None:
                raise RecordError(f"{entity.name}: listed without its {entity.scope}")
            source[entity.scope] = scope_id
        for name in major_units:
            source[name] = _minor_units(entity, name, raw.get(name))
        get = source.get
    try:
        values = {name: convert(get(name)) for name, convert in _coercers(entity)}
    except CoercionError:
        values = {}
        for field in entity.fields:  # again, slowly, to name the field
            try:
                values[field.name] = coerce(field.type, get(field.name))
            except CoercionError as exc:
                raise RecordError(
                    f"{entity.name} {entity.key}={get(entity.key)!r}: field {field.name!r} "
                    f"({field.type.value}) got {exc}"
                ) from None
    record_id = values[entity.key]
    if record_id is None:
        raise RecordError(f"{entity.name}: an object without {entity.key!r}")
    deleted = False
    if entity.delete_flag is not None:
        try:
            deleted = bool(coerce(FieldType.FLAG, raw.get(entity.delete_flag)))
        except CoercionError as exc:
            raise RecordError(
                f"{entity.name} {entity.key}={record_id}: field {entity.delete_flag!r} got {exc}"
            ) from None
    return PosterRecord(
        entity=entity.name, id=record_id, values=values, raw=raw, is_deleted=deleted
    )
