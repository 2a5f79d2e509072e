"""A subscription whose generator leaves a marker when it ends: the server-stop tests count them.

Each marker holds how many subscribers the hub still had in the group once this one had left,
so the test can tell that the cleanups ran (one marker per stream) and left the group empty.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path

from django_sse import EventSourceResponse, subscribe
from django_sse.live.hub import get_hub


def _leave_marker(folder: str, left_in_group: int) -> None:
    Path(folder, f"{uuid.uuid4().hex}.closed").write_text(str(left_in_group))


async def marked_subscription(request: HttpRequest, name: str) -> EventSourceResponse:
    group = f"x.{name}"
    folder = os.environ.get("DJANGO_SSE_TEST_MARKERS", "")

    async def events() -> AsyncIterator[Any]:
        subscription = subscribe(group)
        try:
            async for event in subscription:
                yield event
        finally:
            await subscription.close()
            if folder:
                _leave_marker(folder, get_hub().groups().get(group, 0))

    return EventSourceResponse(events())


async def plain_endless(request: HttpRequest) -> StreamingHttpResponse:
    """Not an event stream: django_sse does not end it when the server stops."""

    async def lines() -> AsyncIterator[bytes]:
        while True:
            yield b"line\n"
            await asyncio.sleep(0.5)

    return StreamingHttpResponse(lines(), content_type="text/plain")


urlpatterns = [
    path("test/stop/plain", plain_endless),
    path("test/stop/<str:name>", marked_subscription),
]
