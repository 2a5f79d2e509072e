"""Views for the live-update tests: streams whose request thread has used the database."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path

from demo_project.items.models import Item
from django_sse import EventSourceResponse
from django_sse.live.hub import get_hub
from django_sse.live.subscription import Subscription
from django_sse.live.views import SubscriptionView


async def touches_the_database(request: HttpRequest, group: str, **kwargs: Any) -> bool:
    # The async ORM runs in the request's own thread, which opens a connection there.
    await Item.objects.aexists()
    return True


async def holding_connection(request: HttpRequest) -> EventSourceResponse:
    """The control case: a subscription that keeps the request's connection open."""
    await Item.objects.aexists()
    return EventSourceResponse(_HoldingSubscription("items.item"))


class _HoldingSubscription(Subscription):
    releases_database = False


async def hub_state(request: HttpRequest) -> JsonResponse:
    """What the server's hub holds: local subscribers per group, and its layer channels."""
    hub = get_hub()
    return JsonResponse({"groups": hub.groups(), "channels": hub.channels})


def forbid_odd(request: HttpRequest, group: str, pk: int) -> bool:
    return pk % 2 == 0


urlpatterns = [
    path(
        "test/live/checked",
        SubscriptionView.as_view(group="items.item", check=touches_the_database),
    ),
    path("test/live/holding", holding_connection),
    path("test/live/hub", hub_state),
    path(
        "test/live/login/<str:name>",
        SubscriptionView.as_view(group="items.{name}", login_required=True),
    ),
    path(
        "test/live/perm",
        SubscriptionView.as_view(group="items.item", permission_required="items.view_item"),
    ),
    path(
        "test/live/even/<int:pk>",
        SubscriptionView.as_view(group="items.item.{pk}", check=forbid_odd),
    ),
    path("test/live/open/<str:name>", SubscriptionView.as_view(group="x.{name}")),
]
