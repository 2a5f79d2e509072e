"""Priming a response's stream before Django sends it, and releasing one Django drops.

``EventStreamMiddleware`` primes every event stream: its source starts (a subscription joins its
group and replays) while the status can still change, so that an error before the first event
becomes the proper response. A primed stream holds what it started until it is released; the
guard below releases it when Django drops the response without ever starting it.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any

from asgiref.sync import SyncToAsync
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished

from . import conf
from .source import Source
from .stream import ResponseBody

if TYPE_CHECKING:
    from .response import EventSourceResponse


async def prime_stream(
    response: EventSourceResponse, source: Source, stream: ResponseBody, wait: float | None
) -> None:
    """``EventSourceResponse.prime``: start ``source`` and wait for its first event."""
    stream.bind(asyncio.get_running_loop())
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
    # Release the primed stream if Django drops the response without starting it.
    _guard_until_request_finished(stream)
    _release_with_the_response(response, stream)


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
# tests/scenarios/test_middleware_streams.py.) The stream's lease would go by itself with the
# dropped response (``Lease.__del__``), its subscription would not: the hub holds it as a
# member, and only the finalizer below ends it (tests/unit/test_middleware.py fails without it
# on Django 6.1, the garbage collector off).

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
