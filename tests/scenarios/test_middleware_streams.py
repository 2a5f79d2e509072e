"""The middleware of a real project in front of a stream, under real Daphne and uvicorn.

Browsers always send ``Accept-Encoding: gzip``, so every read here does too. Each middleware
must let events through one by one: the first event has to arrive before the second is
published, or a middleware that buffers (GZipMiddleware on Django 5.2 would hold events, or
send each as a gzip member of its own, of which clients decode only the first) would go
unnoticed by a test that publishes everything up front. Event streams are never compressed: they
carry ``Content-Encoding: identity``, which compression middleware leaves alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from django_sse.testing import EventStreamParser, ReceivedEvent
from tests.conftest import StartServer
from tests.support.settings_middleware import EXTRA

pytestmark = pytest.mark.server

# A header each middleware adds to the stream's response: proof that it processed it.
MARKS = {
    "cors": ("access-control-allow-origin", "http://client.example"),
    "debug_toolbar": ("djdt-request-id", None),
    "locale": ("content-language", "fr"),
    "csp": ("content-security-policy", "default-src 'self'"),
}
HEADERS = {
    "Accept": "text/event-stream",
    "Accept-Encoding": "gzip, deflate, br",
    "Accept-Language": "fr",
    "Origin": "http://client.example",
    # For ConditionalGetMiddleware: a stream must never become a 304.
    "If-None-Match": "*",
    "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT",
}


# Generous: the machine may be busy; a buffered event never arrives at all (pings keep the
# connection busy, so no read timeout would fire).
EVENT_LIMIT = 30


async def next_event(
    chunks: AsyncIterator[bytes], parser: EventStreamParser, ready: list[ReceivedEvent]
) -> ReceivedEvent:
    async with asyncio.timeout(EVENT_LIMIT):
        while not ready:
            ready.extend(parser.feed(await anext(chunks)))
    return ready.pop(0)


async def stream_one_by_one(url: str, group: str) -> httpx.Headers:
    parser = EventStreamParser()
    ready: list[ReceivedEvent] = []
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        async with client.stream("GET", f"/test/live/open/{group}", headers=HEADERS) as response:
            assert response.status_code == 200
            chunks = response.aiter_bytes()  # decoded, as a browser does
            async with asyncio.timeout(EVENT_LIMIT):
                while "open" not in parser.comments:  # subscribed
                    ready.extend(parser.feed(await anext(chunks)))
            for seq in range(3):
                published = await client.get(
                    "/test/rel/publish", params={"group": f"x.{group}", "seq": seq}
                )
                assert published.status_code == 200
                event = await next_event(chunks, parser, ready)
                assert event.json()["seq"] == seq
                assert event.id == published.json()["ids"][0]
            return response.headers


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
@pytest.mark.parametrize("middleware", [*EXTRA, "all"])
async def test_events_pass_each_middleware_one_by_one(
    start: StartServer, kind: str, middleware: str
) -> None:
    server = start(
        kind,
        env={
            "DJANGO_SETTINGS_MODULE": "tests.support.settings_middleware",
            "DJANGO_SSE_TEST_MIDDLEWARE": middleware,
        },
    )
    headers = await stream_one_by_one(server.url, f"mw-{middleware}")
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers.get("content-encoding") == "identity"
    for name in EXTRA if middleware == "all" else [middleware]:
        if name in MARKS:
            header, value = MARKS[name]
            assert header in headers, (name, headers)
            assert value is None or headers[header] == value
    log = server.log()
    assert "Traceback" not in log, log
