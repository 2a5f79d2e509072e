"""The test project's ASGI application, counting the event streams it serves right now.

``GET /test/browser/streams`` answers ``{"open": n, "opened": [t, ...]}``: the event-stream
responses in progress and the ``time.monotonic()`` at which each one started (one clock for
every process on Linux), so that a browser test can assert from the server's side how many
connections its tabs hold and measure when a new one appeared. It wraps the application rather
than reading the hub's bookkeeping, so it counts connections whatever the stream's source.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.asgi import application as django_application

Scope = dict[str, Any]
Receive = Any
Send = Any

COUNT_PATH = "/test/browser/streams"
_open = 0
_opened: list[float] = []


async def _answer_count(send: Send) -> None:
    body = json.dumps({"open": _open, "opened": _opened}).encode()
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    global _open
    if scope["type"] != "http":
        await django_application(scope, receive, send)
        return
    if scope["path"] == COUNT_PATH:
        await _answer_count(send)
        return
    streaming = False

    async def counting_send(message: dict[str, Any]) -> None:
        nonlocal streaming
        global _open
        if message["type"] == "http.response.start":
            headers = {bytes(k).lower(): bytes(v) for k, v in message.get("headers", [])}
            if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                streaming = True
                _open += 1
                _opened.append(time.monotonic())
        await send(message)

    try:
        await django_application(scope, receive, counting_send)
    finally:
        if streaming:
            _open -= 1
