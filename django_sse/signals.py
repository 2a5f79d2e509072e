"""Publish a model's changes: ``register(Item)`` and every save or delete reaches subscribers.

``post_save`` and ``post_delete`` publish ``created``/``updated``/``deleted`` events (names are
configurable) to a model group (``"items.item"``) and a per-object group (``"items.item.5"``).
The event is published from ``transaction.on_commit``: nothing when the transaction rolls back,
once when it commits. The payload is built by a pydantic schema when the signal fires, so it
shows the row as it was saved (a deleted row still has its id).

Signals cannot see ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()``, raw SQL or
``QuerySet.delete()`` on fast paths; call ``publish_instances`` (or ``publish_queryset``) after
those.
"""

from __future__ import annotations

import datetime
import decimal
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from pydantic import BaseModel, ConfigDict, create_model

from .events import ServerSentEvent
from .groups import validate_group
from .publish import publish_many_sync

logger = logging.getLogger("django_sse")

ACTIONS = ("created", "updated", "deleted")

_FIELD_TYPES: list[tuple[type[models.Field[Any, Any]], Any]] = [
    (models.BooleanField, bool),
    (models.AutoField, int),
    (models.BigAutoField, int),
    (models.SmallAutoField, int),
    (models.IntegerField, int),
    (models.FloatField, float),
    (models.DecimalField, decimal.Decimal),
    (models.DateTimeField, datetime.datetime),  # before DateField: it is a subclass
    (models.DateField, datetime.date),
    (models.TimeField, datetime.time),
    (models.DurationField, datetime.timedelta),
    (models.UUIDField, uuid.UUID),
    (models.CharField, str),
    (models.TextField, str),
]


def _python_type(model_field: models.Field[Any, Any]) -> Any:
    if model_field.is_relation:
        target = model_field.target_field  # type: ignore[attr-defined]
        return _python_type(target)
    for field_class, python_type in _FIELD_TYPES:
        if isinstance(model_field, field_class):
            return python_type | None if model_field.null else python_type
    return Any


def default_schema(model: type[models.Model]) -> type[BaseModel]:
    """A pydantic model of ``model``'s concrete fields (foreign keys as ``<name>_id``)."""
    fields: dict[str, Any] = {}
    for model_field in model._meta.concrete_fields:
        fields[model_field.attname] = (_python_type(model_field), ...)
    schema: type[BaseModel] = create_model(
        f"{model.__name__}Event",
        __config__=ConfigDict(from_attributes=True),
        **fields,
    )
    return schema


@dataclass
class Registration:
    model: type[models.Model]
    schema: type[BaseModel]
    group: str
    events: Mapping[str, str]
    object_groups: bool = True
    using: str | None = None
    receivers: list[Callable[..., None]] = field(default_factory=list)

    def object_group(self, pk: Any) -> str | None:
        name = f"{self.group}.{pk}"
        try:
            return validate_group(name)
        except ValueError:
            logger.warning("No per-object group for %r: %r is not a valid group name", pk, name)
            return None

    def groups_for(self, instance: models.Model) -> list[str]:
        groups = [self.group]
        if self.object_groups and instance.pk is not None:
            object_group = self.object_group(instance.pk)
            if object_group is not None:
                groups.append(object_group)
        return groups

    def event(self, instance: models.Model, action: str) -> ServerSentEvent:
        payload = self.schema.model_validate(instance, from_attributes=True)
        return ServerSentEvent(event=self.events[action], data=payload)

    def events_for(self, instance: models.Model, action: str) -> list[tuple[str, ServerSentEvent]]:
        # Built now: after a delete, or a later save in the same transaction, the instance
        # no longer shows what this signal saw.
        event = self.event(instance, action)
        return [(group, event) for group in self.groups_for(instance)]

    def publish_on_commit(self, instance: models.Model, action: str, using: str) -> None:
        _publish_on_commit(self.events_for(instance, action), using)


def _publish_on_commit(events: list[tuple[str, ServerSentEvent]], using: str) -> None:
    if events:
        # robust: a broker that is down must not break the code that committed.
        transaction.on_commit(lambda: publish_many_sync(events), using=using, robust=True)


_registry: dict[type[models.Model], Registration] = {}


def register(
    model: type[models.Model],
    *,
    schema: type[BaseModel] | None = None,
    group: str | None = None,
    events: Mapping[str, str] | None = None,
    object_groups: bool = True,
) -> Registration:
    """Publish ``model``'s saves and deletes; call it from an ``AppConfig.ready()``.

    ``schema`` (a pydantic model read ``from_attributes``) shapes the payload; by default every
    concrete field, ``id`` included. ``group`` defaults to ``"<app_label>.<model_name>"``;
    each object also gets ``"<group>.<pk>"`` unless ``object_groups=False``. ``events`` renames
    the ``created``/``updated``/``deleted`` events, e.g. ``{"created": "item_created"}``.
    """
    if model in _registry:
        raise ValueError(f"{model.__name__} is already registered for live updates.")
    unknown = set(events or {}) - set(ACTIONS)
    if unknown:
        raise ValueError(f"Unknown action(s) {sorted(unknown)}: use {', '.join(ACTIONS)}.")
    registration = Registration(
        model=model,
        schema=schema or default_schema(model),
        group=validate_group(group or model._meta.label_lower),
        events={action: action for action in ACTIONS} | dict(events or {}),
        object_groups=object_groups,
    )

    def saved(sender: Any, instance: models.Model, created: bool, **kwargs: Any) -> None:
        if kwargs.get("raw"):  # loaddata: fixtures are not live changes
            return
        action = "created" if created else "updated"
        registration.publish_on_commit(instance, action, kwargs.get("using") or "default")

    def deleted(sender: Any, instance: models.Model, **kwargs: Any) -> None:
        registration.publish_on_commit(instance, "deleted", kwargs.get("using") or "default")

    uid = f"django_sse:{model._meta.label_lower}"
    post_save.connect(saved, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(deleted, sender=model, weak=False, dispatch_uid=uid)
    registration.receivers = [saved, deleted]
    _registry[model] = registration
    return registration


def unregister(model: type[models.Model]) -> None:
    registration = _registry.pop(model, None)
    if registration is None:
        return
    uid = f"django_sse:{model._meta.label_lower}"
    post_save.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)


def registration_for(model: type[models.Model]) -> Registration:
    try:
        return _registry[model]
    except KeyError:
        raise ValueError(f"{model.__name__} is not registered: call register() first.") from None


def publish_instances(
    instances: Iterable[models.Model], action: str = "updated", *, using: str = "default"
) -> None:
    """Publish ``action`` for instances changed behind the signals' back (bulk operations).

    Like the signal handlers, it publishes on commit of the current transaction (at once in
    autocommit mode). Pass the instances as they are now, e.g. re-read after ``update()``.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}: use {', '.join(ACTIONS)}.")
    events: list[tuple[str, ServerSentEvent]] = []
    for instance in instances:
        events += registration_for(type(instance)).events_for(instance, action)
    _publish_on_commit(events, using)


def publish_queryset(queryset: models.QuerySet[Any], action: str = "updated") -> None:
    """``publish_instances`` for the rows of ``queryset`` (evaluated now)."""
    publish_instances(queryset, action, using=queryset.db)
