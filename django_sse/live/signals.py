"""Publish a model's changes: ``register(Item)`` and every save or delete reaches subscribers.

``post_save`` and ``post_delete`` publish ``created``/``updated``/``deleted`` events (names are
configurable) to a model group (``"items.item"``) and a per-object group (``"items.item.5"``),
after the transaction commits: nothing when it rolls back, once when it commits. By default the
events are written to the outbox (``django_sse.live.outbox``) in the saving transaction and relayed
from there, so a broker outage or a crash after the commit loses nothing; with
``DJANGO_SSE["OUTBOX"] = False`` they are published straight from ``on_commit``.

The payload is built when the signal fires, from the row as the database returns it (read back
by primary key in the same transaction), so a live event shows what a reload shows: Django does
not normalise values on save (a ``DecimalField`` given ``5`` still holds ``Decimal("5")``, a
``DateField`` given a ``datetime`` still holds it, an ``F()`` expression stays an expression).
A deleted row is read back just before the delete when the instance was the one deleted;
rows that a queryset delete or a cascade removes were just loaded from the database anyway.
Nothing here makes a save fail: a payload that cannot be built is logged and not published.

Signals cannot see ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()``, raw SQL or
``QuerySet.delete()`` on fast paths; call ``publish_instances`` (or ``publish_queryset``) after
those.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save, pre_delete
from pydantic import BaseModel

from .. import conf
from .groups import validate_group
from .schemas import default_schema
from .state import live_state

__all__ = [
    "ACTIONS",
    "Registration",
    "default_schema",
    "publish_instances",
    "publish_queryset",
    "register",
    "registration_for",
    "unregister",
]

logger = logging.getLogger("django_sse")

ACTIONS = ("created", "updated", "deleted")
# Primary keys per read-back query (publish_instances): well under every backend's limit.
READ_BACK_CHUNK = 500
# Where pre_delete leaves a deleted instance's event for post_delete.
_DELETED = "_django_sse_deleted_event"

Event = tuple[list[str], str, Any]  # (groups, event name, JSON-able payload)


def read_back(instances: Sequence[models.Model], using: str) -> list[models.Model]:
    """Copies of ``instances`` (one model) holding their columns as the database returns them.

    The copies keep everything else of the instance (attributes a custom schema may read, cached
    relations); an instance whose row is not in the database is returned as it is.
    """
    if not instances:
        return []
    model = type(instances[0])
    pk_field = model._meta.pk
    assert pk_field is not None
    attnames = [f.attname for f in model._meta.concrete_fields]
    pks = [pk_field.to_python(i.pk) for i in instances if i.pk is not None]
    rows: dict[Any, dict[str, Any]] = {}
    manager = model._base_manager.db_manager(using)
    for start in range(0, len(pks), READ_BACK_CHUNK):
        chunk = pks[start : start + READ_BACK_CHUNK]
        for row in manager.filter(pk__in=chunk).values(*attnames):
            rows[row[pk_field.attname]] = row
    copies: list[models.Model] = []
    for instance in instances:
        values = None if instance.pk is None else rows.get(pk_field.to_python(instance.pk))
        if values is None:
            copies.append(instance)
            continue
        snapshot = copy.copy(instance)
        for name, value in values.items():
            setattr(snapshot, name, value)
        copies.append(snapshot)
    return copies


@dataclass
class Registration:
    model: type[models.Model]
    schema: type[BaseModel]
    group: str
    events: Mapping[str, str]
    object_groups: bool = True

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

    def payload(self, instance: models.Model) -> Any:
        """The JSON form of ``instance`` through the schema (a dict for the default schema)."""
        return self.schema.model_validate(instance, from_attributes=True).model_dump(
            mode="json", by_alias=True
        )

    def event_for(self, instance: models.Model, action: str) -> Event | None:
        """The event of ``instance`` as it is (read it back first); ``None`` if it cannot be
        built, which is logged: a schema that raises must not break the code that saved."""
        try:
            return self.groups_for(instance), self.events[action], self.payload(instance)
        except Exception:
            logger.exception(
                "Could not build the %r event of %s pk=%r: it is not published (the save itself "
                "is not affected). Check the schema registered for this model.",
                action,
                self.model._meta.label,
                instance.pk,
            )
            return None

    def events_for(self, instances: Sequence[models.Model], action: str, using: str) -> list[Event]:
        if action != "deleted":
            # Built now: a later save in the same transaction would change what is read back.
            instances = read_back(instances, using)
        events = [self.event_for(instance, action) for instance in instances]
        return [event for event in events if event is not None]


def emit(events: list[Event], using: str) -> None:
    """Publish ``events`` once the current transaction of ``using`` commits (at once in
    autocommit): through the outbox, or straight from ``on_commit`` without it."""
    from . import outbox  # its model must not be imported before the app registry is ready

    if not events:
        return
    if conf.get("OUTBOX") and outbox.write(using, events):
        return
    messages = outbox.messages(events)
    # robust: a broker that is down must not break the code that committed (the event is lost).
    transaction.on_commit(lambda: outbox.publish_events(messages), using=using, robust=True)


def _never_raise(handler: Callable[..., None]) -> Callable[..., None]:
    def guarded(sender: Any, instance: models.Model, **kwargs: Any) -> None:
        try:
            handler(instance, **kwargs)
        except Exception:
            logger.exception("django_sse could not handle a change of %r", instance)

    return guarded


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
    if model in live_state.models:
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

    def saved(instance: models.Model, created: bool, **kwargs: Any) -> None:
        if kwargs.get("raw"):  # loaddata: fixtures are not live changes
            return
        using = kwargs.get("using") or "default"
        action = "created" if created else "updated"
        emit(registration.events_for([instance], action, using), using)

    def deleting(instance: models.Model, **kwargs: Any) -> None:
        # The instance a caller deleted may differ from its row (never reloaded after a save):
        # read the row while it is still there. Queryset deletes and cascades load their rows.
        if kwargs.get("origin") is instance:
            using = kwargs.get("using") or "default"
            [snapshot] = read_back([instance], using)
            instance.__dict__[_DELETED] = registration.event_for(snapshot, "deleted")

    def deleted(instance: models.Model, **kwargs: Any) -> None:
        using = kwargs.get("using") or "default"
        if _DELETED in instance.__dict__:
            event = instance.__dict__.pop(_DELETED)
            events = [] if event is None else [event]
        else:
            events = registration.events_for([instance], "deleted", using)
        emit(events, using)

    uid = f"django_sse:{model._meta.label_lower}"
    receivers = [_never_raise(saved), _never_raise(deleting), _never_raise(deleted)]
    post_save.connect(receivers[0], sender=model, weak=False, dispatch_uid=uid)
    pre_delete.connect(receivers[1], sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(receivers[2], sender=model, weak=False, dispatch_uid=uid)
    live_state.models[model] = registration
    return registration


def unregister(model: type[models.Model]) -> None:
    registration = live_state.models.pop(model, None)
    if registration is None:
        return
    uid = f"django_sse:{model._meta.label_lower}"
    post_save.disconnect(sender=model, dispatch_uid=uid)
    pre_delete.disconnect(sender=model, dispatch_uid=uid)
    post_delete.disconnect(sender=model, dispatch_uid=uid)


def registration_for(model: type[models.Model]) -> Registration:
    try:
        return live_state.models[model]
    except KeyError:
        raise ValueError(f"{model.__name__} is not registered: call register() first.") from None


def publish_instances(
    instances: Iterable[models.Model], action: str = "updated", *, using: str = "default"
) -> None:
    """Publish ``action`` for instances changed behind the signals' back (bulk operations).

    Like the signal handlers, it publishes on commit of the current transaction (at once in
    autocommit mode), through the outbox, with each row read back from the database (one query
    per 500 rows), except for ``"deleted"``: those rows are gone, their instances are sent as
    they are.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}: use {', '.join(ACTIONS)}.")
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for instance in instances:
        by_model.setdefault(type(instance), []).append(instance)
    events: list[Event] = []
    for model, group in by_model.items():
        events += registration_for(model).events_for(group, action, using)
    emit(events, using)


def publish_queryset(queryset: models.QuerySet[Any], action: str = "updated") -> None:
    """``publish_instances`` for the rows of ``queryset`` (evaluated now)."""
    publish_instances(queryset, action, using=queryset.db)
