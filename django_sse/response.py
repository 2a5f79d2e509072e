"""``EventSourceResponse``: a ``StreamingHttpResponse`` that speaks ``text/event-stream``."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import StreamingHttpResponse

from . import conf
from .encoding import encode_item
from .pump import StreamPump
from .stream import EventStream
from .subscribe import Subscription
from .threaded import iterate_in_thread

DEFAULT_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-store, no-transform",
    "X-Accel-Buffering": "no",
}

WSGI_ERROR = (
    "EventSourceResponse got an async iterable but is being served under WSGI, which would "
    "buffer the endless stream forever. Serve the project with an ASGI server: add 'daphne' "
    "to INSTALLED_APPS (runserver becomes ASGI) or run uvicorn/daphne on your asgi.py."
)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield


class EventSourceResponse(StreamingHttpResponse):
    """Stream events to an ``EventSource``.

    ``content`` is an async iterable (or a sync one, iterated in a worker thread) of
    ``ServerSentEvent`` objects, pydantic models or JSON-able values. While the source is idle
    for ``ping_interval`` seconds a ``: ping`` comment keeps the connection alive.
    """

    def __init__(
        self,
        content: AsyncIterable[Any] | Iterable[Any] = (),
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        ping_interval: float | None = None,
        reason: str | None = None,
    ) -> None:
        merged = dict(DEFAULT_HEADERS)
        for name, value in (headers or {}).items():
            for default in [d for d in merged if d.lower() == name.lower()]:
                del merged[default]
            merged[name] = value
        self.ping_interval: float | None = (
            conf.get("PING_INTERVAL") if ping_interval is None else ping_interval
        )
        self._sync_content: Iterable[Any] | None = None
        source: AsyncIterator[Any] | None = None
        # A Subscription already buffers encoded events and has the pump's interface: driving
        # it directly saves a task per connection.
        subscription = content if isinstance(content, Subscription) and status != 204 else None
        if status != 204 and subscription is None:
            if isinstance(content, AsyncIterable):
                source = aiter(content)
            elif isinstance(content, Iterable):
                self._sync_content = content
                source = iterate_in_thread(content)
            else:
                raise TypeError(
                    "EventSourceResponse content must be an iterable or async iterable, "
                    f"not {type(content).__name__}."
                )
        self._pump: StreamPump | Subscription | None = (
            StreamPump(source, limit=conf.get("STREAM_BUFFER")) if source is not None else None
        )
        if subscription is not None:
            self._pump = subscription
        self._event_stream: AsyncIterator[bytes] = (
            EventStream(
                self._pump,
                self.ping_interval,
                resumable=isinstance(self._pump, Subscription),
            )
            if self._pump is not None
            else _nothing()
        )
        super().__init__(self._event_stream, status=status, headers=merged, reason=reason)

    async def prime(self, wait: float | None = None) -> None:
        """Start the source and wait up to ``wait`` seconds for its first event.

        An exception the source raises before that is re-raised here, while the status can still
        change, so that Django turns ``Http404`` or ``PermissionDenied`` into the proper response.
        ``EventStreamMiddleware`` calls this for every event stream.
        """
        if self._pump is None:
            return
        try:
            if isinstance(self._pump, Subscription):
                # Joining and replaying is all that can fail early: no need to wait for an event.
                await self._pump.setup()
                if not isinstance(self._pump.error, ImproperlyConfigured):
                    # A broker or database outage: a 200 that tells the browser to come back.
                    return
            else:
                self._pump.start()
                await self._pump.wait(conf.get("FIRST_EVENT_WAIT") if wait is None else wait)
        except BaseException:
            # The client went away while we waited (Django cancels the request) and will drop
            # this response without iterating it: nothing else would stop the source.
            await self._pump.close()
            raise
        if self._pump.finished and self._pump.error is not None and not self._pump.has_data:
            error, self._pump.error = self._pump.error, None
            raise error

    def __aiter__(self) -> AsyncIterator[bytes]:
        # Skip Django's per-chunk make_bytes wrapper unless a middleware replaced the content.
        current: object = getattr(self, "_iterator", None)
        if current is self._event_stream:
            return self._event_stream
        wrapped: AsyncIterator[bytes] = super().__aiter__()
        return wrapped

    def __iter__(self) -> Iterator[bytes]:
        if self._sync_content is None:
            raise RuntimeError(WSGI_ERROR)
        return self._sync_events(self._sync_content)

    @staticmethod
    def _sync_events(content: Iterable[Any]) -> Iterator[bytes]:
        # WSGI: no event loop, so no keep-alive pings; each event is written as it comes.
        for item in content:
            chunk = encode_item(item)
            if chunk:
                yield chunk
