"""Anchor: the textbook Channels recipe, one layer channel per connection.

Each stream is an ``AsyncHttpConsumer`` that adds its own channel to the group; a publish is a
``group_send`` that the layer delivers to every member channel, and each consumer writes the
(already encoded) event to its response. No replay: a reconnecting client misses what was sent
meanwhile. ``bench/djangoapps/asgi.py`` routes ``/stream`` here; the other paths are Django views.
"""

from __future__ import annotations

from typing import Any

from channels.generic.http import AsyncHttpConsumer
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.common import GROUP, Tick, query_ints, start_publishing
from bench.djangoapps.views import health

HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class TickStream(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=HEADERS)
        await self.send_body(b": open\n\n", more_body=True)
        await self.channel_layer.group_add(GROUP, self.channel_name)

    async def http_request(self, message: dict[str, Any]) -> None:
        # AsyncHttpConsumer ends the consumer once handle() returns: a stream lives on, taking
        # its group's messages, until the client disconnects (http_disconnect stops it).
        await self.handle(b"")

    async def tick(self, event: dict[str, Any]) -> None:
        await self.send_body(event["data"], more_body=True)

    async def disconnect(self) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)


def encode(tick: Tick) -> bytes:
    return b"data: " + tick.model_dump_json().encode() + b"\n\n"


async def publish(tick: Tick) -> None:
    await get_channel_layer().group_send(GROUP, {"type": "tick", "data": encode(tick)})


async def publish_view(request: HttpRequest) -> HttpResponse:
    args = query_ints(request.META.get("QUERY_STRING", ""), n=1, rate=0, start=0)
    start_publishing(publish, args["n"], args["rate"], args["start"])
    return HttpResponse(GROUP)


urlpatterns = [path("publish", publish_view), path("health", health)]
