"""Anchor: a hand-written Django hub, what a careful developer writes without a library.

Plain ``StreamingHttpResponse`` over async generators; one asyncio queue per subscriber; each
published tick is encoded once and the same bytes are queued for every subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

from bench.common import GROUP, Tick, make_tick, query_ints, start_publishing
from bench.djangoapps.views import health

subscribers: set[asyncio.Queue[bytes]] = set()


def encode(tick: Tick) -> bytes:
    return b"data: " + tick.model_dump_json().encode() + b"\n\n"


def publish(tick: Tick) -> None:
    chunk = encode(tick)
    for queue in subscribers:
        queue.put_nowait(chunk)


def event_stream(events: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


async def firehose(request: HttpRequest) -> StreamingHttpResponse:
    n = query_ints(request.META.get("QUERY_STRING", ""), n=50_000)["n"]

    async def events() -> AsyncIterator[bytes]:
        for seq in range(n):
            yield encode(make_tick(seq))

    return event_stream(events())


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def events() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        subscribers.add(queue)
        try:
            # Daphne sends the headers only with the first body chunk.
            yield b": open\n\n"
            while True:
                yield await queue.get()
        finally:
            subscribers.discard(queue)

    return event_stream(events())


async def publish_view(request: HttpRequest) -> HttpResponse:
    args = query_ints(request.META.get("QUERY_STRING", ""), n=1, rate=0, start=0)
    start_publishing(publish, args["n"], args["rate"], args["start"])
    return HttpResponse(GROUP)


urlpatterns = [
    path("firehose", firehose),
    path("stream", stream),
    path("publish", publish_view),
    path("health", health),
]
