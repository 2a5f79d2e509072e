"""The floor: SSE in raw ASGI, no framework. One send per event; a hub of asyncio queues.

Each published tick is encoded once and the same bytes go to every subscriber's queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.common import GROUP, Tick, make_tick, query_ints, start_publishing

HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
subscribers: set[asyncio.Queue[bytes | None]] = set()


def encode(tick: Tick) -> bytes:
    return b"data: " + tick.__pydantic_serializer__.to_json(tick) + b"\n\n"


def publish(tick: Tick) -> None:
    chunk = encode(tick)
    for queue in subscribers:
        queue.put_nowait(chunk)


async def _plain(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _watch_disconnect(receive: Any, queue: asyncio.Queue[bytes | None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    queue.put_nowait(None)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/firehose":
        n = query_ints(scope["query_string"], n=50_000)["n"]
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        for seq in range(n):
            body = encode(make_tick(seq))
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/stream":
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        subscribers.add(queue)
        watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, queue))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": b": open\n\n", "more_body": True})
            while (chunk := await queue.get()) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            subscribers.discard(queue)
            watcher.cancel()
    elif path == "/publish":
        args = query_ints(scope["query_string"], n=1, rate=0, start=0)
        start_publishing(publish, args["n"], args["rate"], args["start"])
        await _plain(send, 200, GROUP.encode())
    elif path == "/health":
        await _plain(send, 200, b"ok")
    else:
        await _plain(send, 404, b"")
