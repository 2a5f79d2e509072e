"""Anchor: FastAPI's own ``fastapi.sse``, written as its documentation shows.

Path operations yield the typed model; FastAPI validates and encodes each item of each stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from bench.common import GROUP, Tick, make_tick, start_publishing

app = FastAPI()
subscribers: set[asyncio.Queue[Tick]] = set()


def publish(tick: Tick) -> None:
    for queue in subscribers:
        queue.put_nowait(tick)


@app.get("/firehose", response_class=EventSourceResponse)
async def firehose(n: int = 50_000) -> AsyncIterable[Tick]:
    for seq in range(n):
        yield make_tick(seq)


@app.get("/stream", response_class=EventSourceResponse)
async def stream() -> AsyncIterable[Tick | ServerSentEvent]:
    queue: asyncio.Queue[Tick] = asyncio.Queue()
    subscribers.add(queue)
    try:
        yield ServerSentEvent(comment="open")
        while True:
            yield await queue.get()
    finally:
        subscribers.discard(queue)


@app.get("/publish", response_class=PlainTextResponse)
async def publish_view(n: int = 1, rate: int = 0, start: int = 0) -> str:
    start_publishing(publish, n, rate, start)
    return GROUP


@app.get("/health", response_class=PlainTextResponse)
async def health() -> str:
    return "ok"
