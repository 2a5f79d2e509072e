"""django_sse, used as its documentation shows: views return ``EventSourceResponse``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from bench.common import GROUP, Tick, make_tick, query_ints, start_publishing
from bench.djangoapps.views import health
from django_sse import EventSourceResponse

try:
    from django_sse import publish, subscribe
except ImportError:  # a checkout from before the public names were exported
    from django_sse.live.publish import publish
    from django_sse.live.subscription import subscribe

# The end-to-end workload: what a registered model's saves publish (django_sse.live.signals).
ITEMS_GROUP = "items.item"


async def firehose(request: HttpRequest) -> EventSourceResponse:
    n = query_ints(request.META.get("QUERY_STRING", ""), n=50_000)["n"]

    async def events() -> AsyncIterator[Tick]:
        for seq in range(n):
            yield make_tick(seq)

    return EventSourceResponse(events())


async def stream(request: HttpRequest) -> EventSourceResponse:
    return EventSourceResponse(subscribe(GROUP))


async def items(request: HttpRequest) -> EventSourceResponse:
    return EventSourceResponse(subscribe(ITEMS_GROUP))


async def publish_view(request: HttpRequest) -> HttpResponse:
    args = query_ints(request.META.get("QUERY_STRING", ""), n=1, rate=0, start=0)
    # ?items=1 publishes to the model group: the end-to-end client proves its subscriptions so.
    group = ITEMS_GROUP if request.GET.get("items") else GROUP
    start_publishing(lambda tick: publish(group, tick), args["n"], args["rate"], args["start"])
    return HttpResponse(group)


urlpatterns = [
    path("firehose", firehose),
    path("stream", stream),
    path("items", items),
    path("publish", publish_view),
    path("health", health),
    path("feeds/", include("bench.djangoapps.feeds_urls")),
]
