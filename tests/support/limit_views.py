"""Test-only views for the stream limits and metrics (tests/scenarios/test_limits.py).

``/test/limits/stats`` reports the process's stream count (django_sse.limits) beside the hub's
subscribers, so a test can check from outside that the count matches the streams really open.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from django_sse import limits
from django_sse.live.hub import get_hub
from django_sse.live.presence import presence
from django_sse.live.views import SubscriptionView
from django_sse.metrics import metrics_view


async def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"limits": limits.stats(), "subscribers": get_hub().stats()["subscribers"]})


urlpatterns = [
    path("test/limits/stats", stats),
    path("test/metrics", metrics_view),
    path("test/limits/open/<str:name>", SubscriptionView.as_view(group="x.limits.{name}")),
    path(
        "test/limits/per-client/<str:name>",
        SubscriptionView.as_view(group="x.limits.{name}", max_streams_per_client=2),
    ),
]


async def presence_view(request: HttpRequest) -> JsonResponse:
    found = await presence(request.GET["group"])
    return JsonResponse({"count": found.count, "users": found.user_ids})


urlpatterns += [
    path("test/presence", presence_view),
    path(
        "test/presence/stream/<str:name>",
        SubscriptionView.as_view(group="x.presence.{name}"),
    ),
]
