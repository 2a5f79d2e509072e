"""Model registration: what is published for saves and deletes, and when (on commit only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from pydantic import BaseModel

from demo_project.items.models import Item
from django_sse import ServerSentEvent
from django_sse.live import outbox, signals

pytestmark = pytest.mark.django_db(transaction=True)

Published = list[tuple[str, ServerSentEvent]]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    sent: Published = []
    monkeypatch.setattr(outbox, "publish_events", sent.extend)
    return sent


def dump(event: ServerSentEvent) -> Any:
    assert isinstance(event.data, dict)  # the payload's JSON form
    return event.data


def test_the_default_schema_has_every_concrete_field() -> None:
    schema = signals.default_schema(Item)
    assert [field.alias for field in schema.model_fields.values()] == ["id", "name", "price"]
    assert schema.model_fields["field_price"].annotation is Decimal


def test_created_updated_deleted_go_to_the_model_and_object_groups(published: Published) -> None:
    item = Item.objects.create(name="a", price=Decimal("1.50"))
    item.name = "b"
    item.save()
    pk = item.pk
    item.delete()
    assert [(group, event.event) for group, event in published] == [
        ("items.item", "created"),
        (f"items.item.{pk}", "created"),
        ("items.item", "updated"),
        (f"items.item.{pk}", "updated"),
        ("items.item", "deleted"),
        (f"items.item.{pk}", "deleted"),
    ]
    # The payload shows the row as the signal saw it: the deleted row keeps its id.
    assert dump(published[-1][1]) == {"id": pk, "name": "b", "price": "1.50"}


def test_nothing_is_published_before_the_commit_or_after_a_rollback(published: Published) -> None:
    with transaction.atomic():
        Item.objects.create(name="kept", price=1)
        with pytest.raises(RuntimeError), transaction.atomic():
            Item.objects.create(name="savepoint", price=2)
            raise RuntimeError
        assert published == []  # not yet: the transaction has not committed
    assert [dump(e)["name"] for g, e in published if g == "items.item"] == ["kept"]
    published.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        Item.objects.create(name="gone", price=3)
        raise RuntimeError
    assert published == []


def test_bulk_operations_publish_through_the_helper(published: Published) -> None:
    items = Item.objects.bulk_create([Item(name=f"n{i}", price=i) for i in range(3)])
    assert published == []  # signals do not see bulk_create
    signals.publish_instances(items, "created")
    Item.objects.update(price=7)
    signals.publish_queryset(Item.objects.all())
    model_events = [(e.event, dump(e)["price"]) for g, e in published if g == "items.item"]
    assert (
        model_events
        == [("created", "0.00"), ("created", "1.00"), ("created", "2.00")]
        + [("updated", "7.00")] * 3
    )


def test_registration_options(published: Published) -> None:
    class Small(BaseModel):
        id: int
        name: str

    signals.unregister(Item)
    try:
        signals.register(
            Item,
            schema=Small,
            group="shop.items",
            events={"created": "item_created"},
            object_groups=False,
        )
        with pytest.raises(ValueError, match="already registered"):
            signals.register(Item)
        item = Item.objects.create(name="x", price=1)
        assert [(g, e.event, dump(e)) for g, e in published] == [
            ("shop.items", "item_created", {"id": item.pk, "name": "x"})
        ]
        with pytest.raises(ValueError, match="Unknown action"):
            signals.publish_instances([item], "renamed")
    finally:
        signals.unregister(Item)
        signals.register(Item)


def test_fixture_loading_is_not_a_live_change(published: Published) -> None:
    item = Item(name="raw", price=1)
    item.save_base(raw=True)
    assert published == []
