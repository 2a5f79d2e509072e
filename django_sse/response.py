"""``EventSourceResponse``: a ``StreamingHttpResponse`` that speaks ``text/event-stream``."""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from numbers import Real
from typing import Any

from asgiref.sync import SyncToAsync
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished
from django.http import StreamingHttpResponse

from . import conf
from .encoding import encode_item
from .limits import hold_until_finished, retry_after_header, stream_lease
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
        self._sync_content: Iterable[Any] | None = None
        self._source: Source | None = None
        if lease is None:
            pass
        elif isinstance(content, Source):
            # A source of its own (a subscription buffers encoded events): driving it directly
            # saves a task per connection.
            self._source = content
        elif isinstance(content, AsyncIterable):
            self._source = GeneratorSource(aiter(content), limit=conf.get("STREAM_BUFFER"))
        elif isinstance(content, Iterable):
            self._sync_content = content
            self._source = GeneratorSource(
                iterate_in_thread(content), limit=conf.get("STREAM_BUFFER")
            )
        else:
            raise TypeError(
                "EventSourceResponse content must be an iterable or async iterable, "
                f"not {type(content).__name__}."
            )
        self._event_stream: ResponseBody | None = (
            ResponseBody(self._source, self._ping_interval) if self._source is not None else None
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
        source = self._source
        if source is None or self._event_stream is None:
            return
        self._event_stream.bind(asyncio.get_running_loop())
        try:
            await source.open(conf.get("FIRST_EVENT_WAIT") if wait is None else wait)
        except BaseException:
            # The client went away while we waited (Django cancels the request) and will drop
            # this response without iterating it: nothing else would stop the source.
            await source.close()
            raise
        error = source.error
        if source.finished and error is not None and not source.has_data:
            # A resumable source (a subscription that lost its broker or database) fails with a
            # 200 that tells the browser to come back; reconnecting cannot fix a configuration.
            if not source.resumable or isinstance(error, ImproperlyConfigured):
                source.error = None
                raise error
        self._guard(self._event_stream)

    def _guard(self, stream: ResponseBody) -> None:
        """Release the primed ``stream`` if Django drops this response without starting it."""
        _guard_until_request_finished(stream)
        _release_with_the_response(self, stream)

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


# --- Streams whose response Django dropped ---------------------------------------------------
#
# A primed stream has joined its group (or started its generator) before Django sends the
# response. When the client leaves after that and before the response starts (while an outer
# middleware runs), Django cancels the request and drops the response without iterating or
# closing it; an outer middleware may also replace it. Django ends every request it handles
# with ``request_finished``, though, and runs each request in an asgiref
# ``ThreadSensitiveContext`` of its own that every task and thread of that request sees: that
# context says which primed streams belonged to the finished request. Those never started are
# released. A request may even finish before its stream is primed: a thread cannot be
# cancelled, so the middleware below a sync-only one (WhiteNoise) runs on after Django gave the
# request up. (The test client runs no such context: its caller reads the response later.)
#
# ``request_finished`` is not enough on its own. Django 6.1 runs the middleware chain in the
# request's own task; when the disconnect cancels it while a sync-only middleware's thread is
# still returning the response from ``async_to_sync``, asgiref copies that thread's half-finished
# context back into the task, and Django's ``request_finished`` then reaches no receiver
# ("CurrentThreadExecutor already quit"). So a primed stream also goes with its response: once
# nothing holds the response, nothing can start the stream. (A middleware that moved the stream
# into a new response object of its own would lose it; Django's and the common third-party
# ones change the response in place or replace the stream:
# tests/scenarios/test_middleware_streams.py.)

_unsent: weakref.WeakKeyDictionary[object, list[ResponseBody]] = weakref.WeakKeyDictionary()
_finished: weakref.WeakSet[object] = weakref.WeakSet()
_lock = threading.Lock()


def _guard_until_request_finished(stream: ResponseBody) -> None:
    request = SyncToAsync.thread_sensitive_context.get(None)
    if request is None:
        return
    with _lock:
        finished = request in _finished
        if not finished:
            _unsent.setdefault(request, []).append(stream)
    if finished:
        stream.release()


def _release_with_the_response(response: EventSourceResponse, stream: ResponseBody) -> None:
    # The finalizer holds the stream, not the response; it runs in whichever thread drops it.
    weakref.finalize(response, _release_if_never_started, stream).atexit = False


def _release_if_never_started(stream: ResponseBody) -> None:
    if not stream.started:
        stream.release()


def _release_unsent(**kwargs: Any) -> None:
    request = SyncToAsync.thread_sensitive_context.get(None)
    if request is None:
        return
    with _lock:
        _finished.add(request)
        streams = _unsent.pop(request, ())
    for stream in streams:
        _release_if_never_started(stream)


request_finished.connect(_release_unsent, dispatch_uid="django_sse.release_unsent")
