"""``EventSourceResponse``: a ``StreamingHttpResponse`` that speaks ``text/event-stream``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from numbers import Real
from typing import Any

from django.http import StreamingHttpResponse

from . import conf
from .encoding import encode_item
from .limits import hold_until_finished, retry_after_header, stream_lease
from .priming import prime_stream
from .pump import GeneratorSource
from .source import Source
from .stream import ResponseBody
from .threaded import iterate_in_thread

DEFAULT_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-store, no-transform",
    "X-Accel-Buffering": "no",
    # Compression middleware leaves alone a response that already has a Content-Encoding
    # (GZipMiddleware, and nginx's gzip too). An event stream must not be compressed: Django
    # 5.2's GZipMiddleware would hold events back or send each as a gzip member of its own
    # (most clients decode only the first), and compressing per connection would undo
    # "encode once" for every subscriber of a fan-out.
    "Content-Encoding": "identity",
}

WSGI_ERROR = (
    "EventSourceResponse got an async iterable but is being served under WSGI, which would "
    "buffer the endless stream forever. Serve the project with an ASGI server: add 'daphne' "
    "to INSTALLED_APPS (runserver becomes ASGI) or run uvicorn/daphne on your asgi.py. In "
    "tests, read it with django.test.AsyncClient, not the sync Client."
)
SYNC_READ_ERROR = (
    "EventSourceResponse streams asynchronously: read it with django.test.AsyncClient "
    "(async for chunk in response.streaming_content, or django_sse.testing.read_events), "
    "not with the sync test Client or a sync for loop."
)


def validate_ping_interval(value: object) -> float:
    """Seconds of silence before a ``: ping``, as a float; ``0`` turns pings off."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"ping_interval must be a number of seconds (int or float), not {value!r}.")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        raise ValueError(
            f"ping_interval must be a finite number of seconds >= 0 (0 turns pings off), "
            f"not {value!r}."
        )
    return seconds


# Django's own property: django-stubs declares it as a plain attribute.
_django_streaming_content: property = vars(StreamingHttpResponse)["streaming_content"]


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield


class _AsyncContent:
    """``streaming_content`` of an async stream: an async iterator that cannot be read in sync.

    Iterated synchronously (the sync test ``Client``, a ``for`` loop) it raises a
    ``TypeError`` that says what to do instead of running the stream without an event loop;
    Django, seeing that ``iter()`` fails, still takes it for the async iterator it is. A sync
    source is read synchronously, as under WSGI. Closing it closes the stream, through whatever
    wraps it (``AsyncClient``'s wrapper), and then the stream itself: the wrappers only schedule
    its release (``response.close()``), and a test whose event loop ends right after ``aclose()``
    would leave the stream counted in the process's byte budget.
    """

    __slots__ = ("_iterator", "_stream", "_sync", "_underlying")

    def __init__(
        self,
        iterator: AsyncIterator[bytes],
        underlying: object,
        sync: Callable[[], Iterator[bytes]] | None,
        stream: ResponseBody | None = None,
    ) -> None:
        self._iterator = iterator
        self._underlying = underlying
        self._sync = sync
        self._stream = stream

    def __aiter__(self) -> _AsyncContent:
        return self

    def __anext__(self) -> Any:
        return self._iterator.__anext__()

    async def aclose(self) -> None:
        for iterator in (self._iterator, self._underlying, self._stream):
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    def __iter__(self) -> Iterator[bytes]:
        if self._sync is None:
            raise TypeError(SYNC_READ_ERROR)
        return self._sync()


def source_for(content: AsyncIterable[Any] | Iterable[Any]) -> Source:
    """The ``Source`` a response drives for ``content``."""
    if isinstance(content, Source):
        # A source of its own (a subscription buffers encoded events): driving it directly
        # saves a task per connection.
        return content
    if isinstance(content, AsyncIterable):
        return GeneratorSource(aiter(content), limit=conf.get("STREAM_BUFFER"))
    if isinstance(content, Iterable):
        return GeneratorSource(iterate_in_thread(content), limit=conf.get("STREAM_BUFFER"))
    raise TypeError(
        "EventSourceResponse content must be an iterable or async iterable, "
        f"not {type(content).__name__}."
    )


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
        self._ping_interval = validate_ping_interval(
            conf.get("PING_INTERVAL") if ping_interval is None else ping_interval
        )
        lease = stream_lease(content) if status != 204 else None
        if status != 204 and lease is None:
            status = 503  # MAX_STREAMS: refused before the first byte (limits.py)
            merged.update(retry_after_header())
        self._source = source_for(content) if lease is not None else None
        # A sync iterable is also served as is under WSGI (``__iter__``).
        self._sync_content: Iterable[Any] | None = (
            content
            if self._source is not None and not isinstance(content, (Source, AsyncIterable))
            else None
        )
        self._event_stream: ResponseBody | None = (
            ResponseBody(self._source, self._ping_interval, lease)
            if self._source is not None
            else None
        )
        body: AsyncIterator[bytes] = self._event_stream or _nothing()
        super().__init__(body, status=status, headers=merged, reason=reason)
        if lease is not None:
            hold_until_finished(self, lease)
        if self._event_stream is not None:
            # Django calls close() when it is done with a response, also one it never iterated
            # (the client left while the headers were being sent).
            closers: list[Callable[[], None]] = self._resource_closers  # type: ignore[attr-defined]
            closers.append(self._event_stream.release)

    @property
    def streams_sync(self) -> bool:
        """Whether the response can be served without an event loop (WSGI): a sync source."""
        return self._event_stream is None or self._sync_content is not None

    @property
    def ping_interval(self) -> float:
        return self._ping_interval

    @ping_interval.setter
    def ping_interval(self, value: float) -> None:
        self._ping_interval = validate_ping_interval(value)
        if self._event_stream is not None:
            self._event_stream.ping_interval = self._ping_interval

    async def prime(self, wait: float | None = None) -> None:
        """Start the source and wait up to ``wait`` seconds for its first event.

        An exception the source raises before that is re-raised here, while the status can still
        change, so that Django turns ``Http404`` or ``PermissionDenied`` into the proper response.
        ``EventStreamMiddleware`` calls this for every event stream.
        """
        if self._source is not None and self._event_stream is not None:
            await prime_stream(self, self._source, self._event_stream, wait)

    def _get_streaming_content(self) -> Any:
        if not self.is_async:
            return _django_streaming_content.__get__(self)
        iterator: object = getattr(self, "_iterator", None)
        sync = self.__iter__ if self._sync_content is not None else None
        if self._event_stream is not None and iterator is self._event_stream:
            # Our own bytes: Django's per-chunk make_bytes wrapper has nothing to do.
            return _AsyncContent(self._event_stream, None, sync)
        return _AsyncContent(
            _django_streaming_content.__get__(self), iterator, sync, self._event_stream
        )

    streaming_content = property(_get_streaming_content, _django_streaming_content.fset)

    def __aiter__(self) -> AsyncIterator[bytes]:
        # Skip Django's per-chunk make_bytes wrapper unless a middleware replaced the content.
        current: object = getattr(self, "_iterator", None)
        if self._event_stream is not None and current is self._event_stream:
            return self._event_stream
        wrapped: AsyncIterator[bytes] = super().__aiter__()
        return wrapped

    def __iter__(self) -> Iterator[bytes]:
        # WSGI (and the sync test Client): only a sync source can be served there.
        if self._event_stream is None:
            return iter(())
        if self._sync_content is None:
            raise RuntimeError(WSGI_ERROR)
        return self._sync_events(self._sync_content)

    def getvalue(self) -> bytes:
        if self.is_async:
            raise TypeError(SYNC_READ_ERROR)
        return super().getvalue()

    @staticmethod
    def _sync_events(content: Iterable[Any]) -> Iterator[bytes]:
        # WSGI: no event loop, so no keep-alive pings; each event is written as it comes.
        for item in content:
            chunk = encode_item(item)
            if chunk:
                yield chunk
