"""``EventStreamMiddleware``: error responses for streams that fail before their first event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase

from .response import WSGI_ERROR, EventSourceResponse


class EventStreamMiddleware:
    """Prime every ``EventSourceResponse`` before Django sends its status line.

    Without it, a generator that raises ``Http404`` before its first event can only end a
    stream that already answered 200. With it, the generator runs until its first event (or
    ``DJANGO_SSE["FIRST_EVENT_WAIT"]`` seconds) first, and an exception raised by then becomes
    the usual error response. Any position in ``MIDDLEWARE`` works.
    """

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self._async:
            return self._acall(request)
        response: HttpResponseBase = self.get_response(request)
        if isinstance(response, EventSourceResponse):
            if isinstance(request, ASGIRequest):
                # Sync here because a sync-only middleware (WhiteNoise, ...) is inside this one:
                # the event loop is still the one that will stream the response.
                async_to_sync(response.prime)()
            elif not response.streams_sync:
                # WSGI, or the sync test Client: say so now rather than fail when it is read.
                raise RuntimeError(WSGI_ERROR)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await self.get_response(request)
        if isinstance(response, EventSourceResponse):
            await response.prime()
        return response
