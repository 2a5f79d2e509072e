"""Anchor: sse-starlette on Starlette, written as its documentation shows.

Subscribers share a hub of asyncio queues holding the tick's JSON (serialized once per publish);
sse-starlette frames it for each subscriber, as an application using it would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.common import GROUP, Tick, make_tick, query_ints, start_publishing

subscribers: set[asyncio.Queue[str]] = set()


def publish(tick: Tick) -> None:
    data = tick.model_dump_json()
    for queue in subscribers:
        queue.put_nowait(data)


async def firehose(request: Request) -> EventSourceResponse:
    n = query_ints(request.url.query, n=50_000)["n"]

    async def events() -> AsyncIterator[dict[str, str]]:
        for seq in range(n):
            yield {"data": make_tick(seq).model_dump_json()}

    return EventSourceResponse(events())


async def stream(request: Request) -> EventSourceResponse:
    queue: asyncio.Queue[str] = asyncio.Queue()
    subscribers.add(queue)

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"comment": "open"}
            while True:
                yield {"data": await queue.get()}
        finally:
            subscribers.discard(queue)

    return EventSourceResponse(events(), ping=15)


async def publish_view(request: Request) -> PlainTextResponse:
    args = query_ints(request.url.query, n=1, rate=0, start=0)
    start_publishing(publish, args["n"], args["rate"], args["start"])
    return PlainTextResponse(GROUP)


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/firehose", firehose),
        Route("/stream", stream),
        Route("/publish", publish_view),
        Route("/health", health),
    ]
)
