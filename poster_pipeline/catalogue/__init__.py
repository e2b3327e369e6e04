"""The entity catalogue and the typing of Poster's fields."""

from poster_pipeline.catalogue.entities import (
    ENTITIES,
    Entity,
    Field,
    entity,
    entity_for_webhook_object,
)
from poster_pipeline.catalogue.fields import COERCERS, CoercionError, FieldType, coerce

__all__ = [
    "COERCERS",
    "ENTITIES",
    "CoercionError",
    "Entity",
    "Field",
    "FieldType",
    "coerce",
    "entity",
    "entity_for_webhook_object",
]
