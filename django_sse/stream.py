"""The body of an ``EventSourceResponse``: an async iterator that allocates nothing per event.

Written as an async generator, every event a stream sends would leave garbage behind for each
of the thousands of connections a fan-out wakes at once: the ``asend`` object of Django's
``async for``, the iterator of the awaited future. Those objects live until the next event, so
the cyclic collector sees them survive, promotes them, and traces every connection's objects
again in frequent full collections (measured: about a quarter of a 5,000-subscriber fan-out's
CPU). So ``__anext__`` hands out one small awaitable per stream (``_Step``), made once and
reused for every event, which gives the source's wake-up future straight to the task: the
steady state of a stream creates only that future.

The awaitable is an object of its own, not the stream: it needs ``__iter__`` (``yield from``
in ``asyncio.ensure_future``), and Django takes any response content with ``__iter__`` for a
sync iterator (``is_async`` false, ``streaming_content`` a sync ``map``: GZipMiddleware,
``AsyncClient`` and every middleware that wraps the content break).

The first step (start the source, join the hub, the opening comment) is an ordinary coroutine;
only the step that repeats for every event is hand-written, and an idle stream holds no
coroutine of its own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Generator
from typing import TYPE_CHECKING

from .abandoned import watch_current_request
from .encoding import PING, jittered_retry
from .source import Source
from .stopping import retry_after_stop, server_stop

if TYPE_CHECKING:
    from .limits import Lease

logger = logging.getLogger("django_sse")

# Sent at once when the first event is not ready: Daphne writes the headers only with the first
# body chunk, and a browser fires "open" only when it has them.
OPENING = b": open\n\n"

# The reconnection delay a failed resumable source asks for, in milliseconds: random in this
# range, so that clients cut off together (a broker outage, a slow log) do not come back together.
RETRY_AFTER_FAILURE_MS = (1000, 3000)


def retry_after_failure() -> bytes:
    """The ``retry:`` field that ends the stream of a resumable source which failed."""
    return jittered_retry(RETRY_AFTER_FAILURE_MS)


_NEW, _RUNNING, _DONE = range(3)


class ClosableBody:
    """How a ``ResponseBody`` ends from outside: closed, released from a thread, or stopped.

    Django closes the body when the client goes away or the stream ends (``aclose``), and closes
    the response, from any thread, last thing for a request (``release``); a stopping server
    ends it after what is buffered (``stop``, stopping.py). ``ResponseBody`` provides the rest.
    """

    _source: Source
    _lease: Lease | None
    _state: int
    _waiter: asyncio.Future[None] | None
    _loop: asyncio.AbstractEventLoop | None
    _stopping: bool
    _step: _Step | None

    # Slots: one body per open stream; ResponseBody's fields too (``__weakref__`` for the
    # server stop's WeakSet).
    __slots__ = (
        "__weakref__",
        "_lease",
        "_loop",
        "_source",
        "_state",
        "_step",
        "_stopping",
        "_waiter",
        "ping_interval",
    )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the source runs on, once it was started."""
        return self._loop

    async def aclose(self) -> None:
        """Stop the source (Django calls this when the client goes away or the stream ends)."""
        self._state = _DONE
        self._waiter = None
        # The step and the body refer to each other: without the step, a closed body (and its
        # source) goes with its last reference, not at a garbage collection. Done: the step
        # is never handed out again.
        self._step = None
        try:
            await self._source.close()
        finally:
            # Django may never call ``response.close()`` for a stream it closed: on Django 6.1 a
            # client gone while a sync-only middleware returns skips it, and the response then
            # lives on in a reference cycle until a garbage collection.
            if self._lease is not None:
                self._lease.release()

    def stop(self) -> None:
        """The server is stopping: send what is buffered and a jittered ``retry:``, then end."""
        if self._state == _DONE:
            return
        self._stopping = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self) -> None:
        """``aclose`` from any thread, without waiting: for owners that cannot await it.

        A source that was never started holds nothing and needs no release.
        Django calls it last thing for a request (``response.close()``): a server stop waits for
        it, so that the server does not drop a request that is still finishing.
        """
        server_stop.forget(self)
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(_start_release, self)
        except RuntimeError:  # the loop is closed, and everything on it is gone
            pass


class ResponseBody(ClosableBody):
    """Async iterator of the bytes to write: events, ``: ping`` while idle, then the end.

    ``ping_interval`` may change while the stream runs: the next wait uses the new value.
    ``lease``, the stream's share of the process's count (limits.py), goes back when the stream
    is closed. How it is closed is ``ClosableBody``'s; the steps of the stream are here.

    The step (``_Step``) and the stream refer to each other, so it exists only while the stream
    runs: a body that was never started (Django dropped its response) is freed, with its lease
    (which then gives itself back), as soon as nothing holds it, and a closed one too, without
    waiting for the cyclic collector.
    """

    __slots__ = ()  # in ClosableBody

    def __init__(self, source: Source, ping_interval: float, lease: Lease | None = None) -> None:
        self._source = source
        self._lease = lease
        self.ping_interval = ping_interval
        self._state = _NEW
        self._waiter: asyncio.Future[None] | None = None
        self._step: _Step | None = None
        # The loop the source runs on, once it was started: ``release`` may come from any thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        # The server is stopping: the next step ends the stream (see stopping.py).
        self._stopping = False

    @property
    def started(self) -> bool:
        """Whether anyone has begun to iterate the stream (or it is over)."""
        return self._state != _NEW

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The source was started on ``loop`` outside the stream (``EventSourceResponse.prime``)."""
        self._loop = loop
        quiet_cancelled_requests()

    def __aiter__(self) -> ResponseBody:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        if self._state == _RUNNING:
            return self._step  # type: ignore[return-value]  # set while running
        if self._state == _DONE:
            raise StopAsyncIteration
        return self._begin()

    async def _begin(self) -> bytes:
        source = self._source
        self._loop = asyncio.get_running_loop()
        quiet_cancelled_requests()
        if server_stop.stopping:  # opened while the server stops: come back later
            self._state = _DONE
            return retry_after_stop()
        server_stop.track(self)
        watch_current_request()
        await source.open()  # a subscription joins the hub and replays here
        if self._state == _DONE:  # released while it was setting up
            raise StopAsyncIteration
        self._step = _Step(self)
        self._state = _RUNNING
        if source.has_data or source.finished:
            return self._after_wait()
        # Nothing to send yet: the comment makes Daphne write the headers (see OPENING).
        return OPENING

    def _next(self) -> asyncio.Future[None]:
        """One step of the steady state: suspend on the source's future, or return bytes."""
        waiter = self._waiter
        if waiter is None and not self._stopping:
            waiter = self._source.waiter(self.ping_interval)
            if waiter is not None:
                self._waiter = waiter
                # What ``Future.__await__`` sets before handing itself to the task.
                waiter._asyncio_future_blocking = True
                return waiter
        self._waiter = None
        raise StopIteration(self._after_wait())

    def _after_wait(self) -> bytes:
        source = self._source
        if self._stopping:
            self._state = _DONE
            return (source.take() if source.has_data else b"") + retry_after_stop()
        if source.has_data:
            return source.take()
        if not source.finished:
            return PING
        self._state = _DONE
        if source.error is None:
            raise StopAsyncIteration
        logger.error("Event stream ended by an exception", exc_info=source.error)
        if not source.resumable:
            raise StopAsyncIteration
        # A resumable source that failed tells the browser when to come back (an error status
        # would make EventSource give up).
        return retry_after_failure()


class _Step:
    """The awaitable of every ``__anext__`` after the first: one per stream, reused."""

    __slots__ = ("_stream",)

    def __init__(self, stream: ResponseBody) -> None:
        self._stream = stream

    def __await__(self) -> Generator[asyncio.Future[None], None, bytes]:
        # A task only calls __next__ (and throw/close when present) on what it awaits.
        return self  # type: ignore[return-value]

    def __iter__(self) -> Generator[asyncio.Future[None], None, bytes]:
        return self  # type: ignore[return-value]  # ``yield from`` (asyncio.ensure_future)

    def __next__(self) -> asyncio.Future[None]:
        return self._stream._next()


# Releases under way: the loop keeps only weak references to tasks.
_releasing: set[asyncio.Task[None]] = set()


def _start_release(stream: ClosableBody) -> None:
    task = asyncio.get_running_loop().create_task(stream.aclose())
    _releasing.add(task)
    task.add_done_callback(_releasing.discard)


class _CancelledRequestFilter(logging.Filter):
    """Drops uvicorn's traceback for a request it cancelled while shutting down.

    When ``--timeout-graceful-shutdown`` runs out, uvicorn cancels every request still running
    and logs "Exception in ASGI application" with a traceback for each: one per open event
    stream, for what is the normal end of a stream there. Its own line before them, "Cancel N
    running task(s), timeout graceful shutdown exceeded", says what happened.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(error, asyncio.CancelledError)
            and str(record.msg).startswith("Exception in ASGI application")
        )


@functools.cache
def quiet_cancelled_requests() -> None:
    """Install the filter once, when the first stream starts (uvicorn has set up its logging)."""
    logging.getLogger("uvicorn.error").addFilter(_CancelledRequestFilter())
