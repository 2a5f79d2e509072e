"""The two examples of FastAPI's SSE documentation as Django async views, and one item's stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.http import HttpRequest
from django.shortcuts import aget_object_or_404
from pydantic import BaseModel

from django_sse import EventSourceResponse, ServerSentEvent, get_last_event_id
from django_sse.views import SubscriptionView

from .models import Item


class ItemSchema(BaseModel):
    name: str
    price: float


ITEMS = [
    ItemSchema(name="Plumbus", price=32.99),
    ItemSchema(name="Portal Gun", price=999.99),
]

LOGS = [
    "2025-01-01 INFO Application started",
    "2025-01-01 DEBUG Connected to database",
]


async def items_stream(request: HttpRequest) -> EventSourceResponse:
    """Each item as an ``item_update`` event, ids 1, 2, ...; a reconnect resumes after its id."""
    last_id = get_last_event_id(request)
    start = int(last_id) if last_id is not None and last_id.isdecimal() else 0

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(comment="stream of item updates")
        for i, item in enumerate(ITEMS[start:], start=start):
            yield ServerSentEvent(data=item, event="item_update", id=str(i + 1), retry=5000)

    return EventSourceResponse(events())


async def logs_stream(request: HttpRequest) -> EventSourceResponse:
    """Log lines sent with ``raw_data``: as they are, unquoted."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        for line in LOGS:
            yield ServerSentEvent(raw_data=line)

    return EventSourceResponse(events())


async def item_exists(request: HttpRequest, group: str, pk: int) -> bool:
    # A URL that names no item is a 404, as for any page of an object, never an empty stream.
    await aget_object_or_404(Item, pk=pk)
    return True


# Changes of one item ("updated", "deleted"), published by django_sse.signals.register.
item_live = SubscriptionView.as_view(group="items.item.{pk}", check=item_exists)
