"""Streams with known timing and failures, served by real servers in the tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from django_sse import EventSourceResponse, ServerSentEvent


def _marker(request: HttpRequest, suffix: str) -> None:
    """Leave a file the test can look for: proof that a ``finally`` ran in the server."""
    folder = os.environ.get("DJANGO_SSE_TEST_MARKERS")
    name = request.GET.get("marker", "")
    if folder and name.isalnum():
        Path(folder, f"{name}.{suffix}").write_text("done")


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


async def late(request: HttpRequest) -> EventSourceResponse:
    delay = float(request.GET.get("delay", "3"))

    async def events() -> AsyncIterator[ServerSentEvent]:
        await asyncio.sleep(delay)
        yield ServerSentEvent(data="late", id="1")

    return EventSourceResponse(events())


async def gaps(request: HttpRequest) -> EventSourceResponse:
    """``count`` events, ``gap`` seconds apart, then the end."""
    count = int(request.GET.get("count", "5"))
    gap = float(request.GET.get("gap", "0.5"))

    async def events() -> AsyncIterator[ServerSentEvent]:
        for i in range(count):
            if i:
                await asyncio.sleep(gap)
            yield ServerSentEvent(data={"n": i}, id=str(i))

    return EventSourceResponse(events())


async def endless(request: HttpRequest) -> EventSourceResponse:
    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            i = 0
            while True:
                yield ServerSentEvent(data=i, id=str(i))
                i += 1
                await asyncio.sleep(0.05)
        finally:
            _marker(request, "closed")

    return EventSourceResponse(events())


async def raise_before(request: HttpRequest) -> EventSourceResponse:
    kind = request.GET.get("kind", "404")

    async def events() -> AsyncIterator[ServerSentEvent]:
        await asyncio.sleep(0.01)  # a lookup that awaits, as aget_object_or_404 does
        if kind == "404":
            raise Http404("no such thing")
        if kind == "403":
            raise PermissionDenied
        if kind == "400":
            raise BadRequest("bad")
        ServerSentEvent(id="a\nb")  # raises pydantic's ValidationError: a server bug, so 500
        yield ServerSentEvent(data="never")

    return EventSourceResponse(events())


async def raise_middle(request: HttpRequest) -> EventSourceResponse:
    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data="first", id="1")
        await asyncio.sleep(0.05)
        raise RuntimeError("boom in the middle")

    return EventSourceResponse(events())


async def sync_stream(request: HttpRequest) -> EventSourceResponse:
    count = int(request.GET.get("count", "3"))

    def events() -> Iterator[ServerSentEvent]:
        try:
            for i in range(count):
                time.sleep(0.05)  # blocking work is fine: it runs in the stream's own thread
                yield ServerSentEvent(data=i, id=str(i))
        finally:
            _marker(request, "closed")

    return EventSourceResponse(events())


async def no_content(request: HttpRequest) -> EventSourceResponse:
    return EventSourceResponse(status=204)


async def custom_headers(request: HttpRequest) -> EventSourceResponse:
    async def events() -> AsyncIterator[str]:
        yield "hello"

    return EventSourceResponse(
        events(), headers={"X-Custom": "kept", "cache-control": "private, no-cache"}
    )
