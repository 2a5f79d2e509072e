"""Anchor: django-eventstream, configured as its README shows (no storage, in-process)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django_eventstream import send_event

from bench.common import GROUP, Tick, query_ints, start_publishing
from bench.djangoapps.views import health


def publish(tick: Tick) -> None:
    send_event(GROUP, "message", tick.model_dump())


async def publish_view(request: HttpRequest) -> HttpResponse:
    args = query_ints(request.META.get("QUERY_STRING", ""), n=1, rate=0, start=0)
    start_publishing(publish, args["n"], args["rate"], args["start"])
    return HttpResponse(GROUP)


urlpatterns = [
    path("stream", include("django_eventstream.urls"), {"channels": [GROUP]}),
    path("publish", publish_view),
    path("health", health),
]
