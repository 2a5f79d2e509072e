"""Test-only streams for the ordering and replay tests (test_concurrent_publishers.py)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path

from django_sse import publish
from django_sse.live.delivery import PublishedEvent
from django_sse.live.subscription import EventFilter
from django_sse.live.views import SubscriptionView


def needs_keep(request: HttpRequest, user: Any) -> EventFilter:
    """A filter with a bug: it raises on every event without a ``keep`` field."""

    def accepts(delivery: PublishedEvent) -> bool:
        return bool(delivery.data["keep"])

    return accepts


async def publish_json(request: HttpRequest) -> JsonResponse:
    """Publish the JSON value ``data`` to ``group``; its id."""
    event_id = await publish(request.GET["group"], json.loads(request.GET["data"]))
    return JsonResponse({"id": event_id})


urlpatterns = [
    path("test/ord/publish", publish_json),
    path("test/ord/stream/<str:name>", SubscriptionView.as_view(group="ord.{name}")),
    path(
        "test/ord/strict/<str:name>",
        SubscriptionView.as_view(group="ord.{name}", event_filter=needs_keep),
    ),
]
