"""``EventStreamMiddleware``: error responses for streams that fail before their first event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase

from .response import WSGI_ERROR, EventSourceResponse


class EventStreamMiddleware:
    """Prime every ``EventSourceResponse`` before Django sends its status line.

    Without it, a generator that raises ``Http404`` before its first event can only end a
    stream that already answered 200. With it, the generator runs until its first event (or
    ``DJANGO_SSE["FIRST_EVENT_WAIT"]`` seconds) first, and an exception raised by then becomes
    the usual error response. Put it after sync-only middleware (WhiteNoise): in front of one,
    Django runs it synchronously and it cannot prime.
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
        if (
            isinstance(response, EventSourceResponse)
            and not isinstance(request, ASGIRequest)
            and not response.streams_sync
        ):
            # WSGI, or the sync test Client: say so now rather than fail when it is read.
            raise RuntimeError(WSGI_ERROR)
        # Under ASGI this runs sync only in front of a sync-only middleware (WhiteNoise, ...):
        # the response is not primed then. Priming through async_to_sync from here broke
        # asgiref's per-request executor when the client left meanwhile (Django 6.1).
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await self.get_response(request)
        if isinstance(response, EventSourceResponse):
            await response.prime()
        return response
