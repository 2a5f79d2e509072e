"""The default payload schema of a registered model: every concrete field, as JSON.

Values are read from the database (see ``signals``), so each field is typed as what Django
returns for it, with three conversions where the Python value is not JSON:

- ``FileField`` / ``ImageField``: the file's name as stored (``"photos/a.png"``), not its URL
  (building a URL can need the storage's network or sign it for a limited time).
- ``BinaryField``: base64, as Django's own serializers (``dumpdata``) write it.
- ``DurationField``: ISO 8601 (``"P1DT2H"``), pydantic's JSON form of a ``timedelta``.

Foreign keys and one-to-one fields appear as ``<name>_id`` with the target's type; many-to-many
fields are not columns of the row and are left out. A field of a type this module does not know
(a third-party field) is sent as JSON if it can be, else as ``str(value)``.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import uuid
from typing import Annotated, Any

from django.db import models
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    WrapSerializer,
    create_model,
)


def _file_name(value: Any) -> Any:
    return getattr(value, "name", value)  # a FieldFile: the name stored in the column


def _as_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value  # PostgreSQL


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _json_or_str(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except (TypeError, ValueError):  # PydanticSerializationError is a ValueError
        return str(value)


FileName = Annotated[str, BeforeValidator(_file_name)]
Base64Bytes = Annotated[bytes, BeforeValidator(_as_bytes), PlainSerializer(_base64)]
IPAddress = Annotated[str, BeforeValidator(str)]
Unknown = Annotated[Any, WrapSerializer(_json_or_str)]

# In this order: the first class a field is an instance of gives its type (subclasses first).
FIELD_TYPES: list[tuple[type[models.Field[Any, Any]], Any]] = [
    (models.BooleanField, bool),
    (models.IntegerField, int),  # AutoField, BigAutoField, Small*, Positive*, BigInteger
    (models.FloatField, float),
    (models.DecimalField, decimal.Decimal),
    (models.DateTimeField, datetime.datetime),  # before DateField: it is a subclass
    (models.DateField, datetime.date),
    (models.TimeField, datetime.time),
    (models.DurationField, datetime.timedelta),
    (models.UUIDField, uuid.UUID),
    (models.CharField, str),  # SlugField, EmailField, URLField
    (models.TextField, str),
    (models.FilePathField, str),
    (models.GenericIPAddressField, IPAddress),
    (models.FileField, FileName),  # ImageField
    (models.BinaryField, Base64Bytes),
    (models.JSONField, Any),
]


def python_type(model_field: models.Field[Any, Any]) -> Any:
    """The annotation for ``model_field``'s value (``None`` allowed when the field is nullable)."""
    if model_field.is_relation:
        target = python_type(model_field.target_field)  # type: ignore[attr-defined]
        return target | None if model_field.null else target
    if isinstance(model_field, models.GeneratedField):
        # The database computes it, and an expression may well give NULL.
        return python_type(model_field.output_field) | None  # type: ignore[arg-type]
    for field_class, annotation in FIELD_TYPES:
        if isinstance(model_field, field_class):
            return annotation | None if model_field.null and annotation is not Any else annotation
    return Unknown


def default_schema(model: type[models.Model]) -> type[BaseModel]:
    """A pydantic model of ``model``'s concrete fields (foreign keys as ``<name>_id``).

    Each field is declared under a name of its own and aliased to the model's: a model field may
    be called ``json``, ``copy`` or ``model_name``, which pydantic reserves for itself.
    """
    fields: dict[str, Any] = {}
    for model_field in model._meta.concrete_fields:
        annotation = python_type(model_field)
        fields[f"field_{model_field.attname}"] = (annotation, Field(alias=model_field.attname))
    schema: type[BaseModel] = create_model(
        f"{model.__name__}Event",
        __config__=ConfigDict(from_attributes=True),
        **fields,
    )
    return schema
