"""django_sse streams for the shared-feeds workload (bench/shared_feeds.py).

- ``GET feeds/stream?groups=N``: one connection following the groups ``bench.feed.0`` to
  ``N - 1`` (``subscribe([...])``);
- ``GET feeds/stream?group=next``: one connection following one of them, in turn (the server
  hands them out round robin, so that ``N`` times as many connections cover each group alike);
- ``GET feeds/publish?groups=N&n=T&rate=R&start=S``: publish ``T`` ticks at ``R`` per second,
  each one to every group.
"""

from __future__ import annotations

import itertools

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.common import Tick, query_ints, start_publishing
from django_sse import EventSourceResponse, publish, subscribe

GROUPS = 10
_turns = itertools.count()


def group(n: int) -> str:
    return f"bench.feed.{n}"


async def stream(request: HttpRequest) -> EventSourceResponse:
    if request.GET.get("group") == "next":
        return EventSourceResponse(subscribe(group(next(_turns) % GROUPS)))
    count = query_ints(request.META.get("QUERY_STRING", ""), groups=GROUPS)["groups"]
    return EventSourceResponse(subscribe([group(n) for n in range(count)]))


async def publish_view(request: HttpRequest) -> HttpResponse:
    args = query_ints(request.META.get("QUERY_STRING", ""), groups=GROUPS, n=1, rate=0, start=0)
    names = [group(n) for n in range(args["groups"])]

    async def to_every_group(tick: Tick) -> None:
        for name in names:
            await publish(name, tick)

    start_publishing(to_every_group, args["n"], args["rate"], args["start"])
    return HttpResponse(",".join(names))


urlpatterns = [
    path("stream", stream),
    path("publish", publish_view),
]
