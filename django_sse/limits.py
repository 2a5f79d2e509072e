"""How many event streams a process serves at once: ``MAX_STREAMS``, and limits per client.

Every ``EventSourceResponse`` takes a lease on this process's stream count when it is built.
With ``DJANGO_SSE["MAX_STREAMS"]`` set, a response built while that many leases are out is a
503 with a jittered ``Retry-After`` instead, decided before its first byte, so a full process
sheds load at the cost of a header (the browser's ``EventSource`` fails on any non-200 status;
``sse.js`` then reconnects after its own exponential, jittered backoff). ``SubscriptionView``
adds a limit per client (a user, an address) on top: see ``client_streams``.

The count must stay exact however clients leave, or a process would refuse streams it no
longer serves. A lease ends at the first of:

- the end of its request: Django sends ``request_finished`` when it closes a response and when
  it gives up a request whose client went away (then it drops the response without closing
  it). Each request runs in an asgiref ``ThreadSensitiveContext`` of its own, which says which
  leases were taken for the finished request;
- ``response.close()``, for a response served without such a context (the test client);
- the close of its stream, which Django 6.1 may do without closing the response;
- the lease being collected: with its response (and its body), served or not, and when the
  response's construction failed. Nothing else holds a lease strongly for that reason.
"""

from __future__ import annotations

import random
import threading
import weakref
from typing import Any

from asgiref.sync import SyncToAsync
from django.core.signals import request_finished

from . import conf, metrics

# The delay a refused client is asked to wait, in seconds: random in this range, so that the
# clients a full process turned away do not all come back in the same second.
RETRY_AFTER_REFUSED_S = (2, 10)


def retry_after_header() -> dict[str, str]:
    """The ``Retry-After`` header of a refusal (whole seconds, as HTTP requires)."""
    return {"Retry-After": str(random.randint(*RETRY_AFTER_REFUSED_S))}


class Lease:
    """One open stream's share of a count; ``release`` gives it back, once."""

    __slots__ = ("__weakref__", "_count", "_key", "label")

    def __init__(self, count: StreamCount, key: str) -> None:
        self._count: StreamCount | None = count
        self._key = key
        self.label: str | None = None  # the stream's label in the open-streams metric

    def release(self) -> None:
        count = self._count
        # The stream's close on the event loop and Django's response.close() in its thread may
        # both release it: the count's lock makes the second one see that it is gone.
        if count is None or not count.give_back(self._key, self):
            return
        if self.label is not None:
            metrics.record().stream_closed(self.label)

    def _detach(self) -> bool:
        """Whether this lease was still out (under the count's lock)."""
        held, self._count = self._count is not None, None
        return held

    # A response built and never served (or whose construction failed) lets go of its lease.
    __del__ = release


class StreamCount:
    """Open streams per key (one key for the process, or one per client), under a limit."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}
        # Leases are taken on the event loop and in sync views' threads, and given back from
        # the thread Django closes responses in. Reentrant: a lease collected while its thread
        # holds the lock gives itself back.
        self._lock = threading.RLock()
        self.refused = 0

    def take(self, key: str, limit: int | None) -> Lease | None:
        """A lease, or ``None`` when ``limit`` leases of ``key`` are out already."""
        with self._lock:
            current = self._open.get(key, 0)
            if limit is not None and current >= limit:
                self.refused += 1
                return None
            self._open[key] = current + 1
        return Lease(self, key)

    def give_back(self, key: str, lease: Lease) -> bool:
        """Give ``lease`` back, once: whether it was still out."""
        with self._lock:
            if not lease._detach():
                return False
            left = self._open[key] - 1
            if left:
                self._open[key] = left
            else:
                del self._open[key]
        return True

    def open(self, key: str) -> int:
        with self._lock:
            return self._open.get(key, 0)

    def total(self) -> int:
        with self._lock:
            return sum(self._open.values())


PROCESS = "process"

# Every stream of this process, under MAX_STREAMS.
open_streams = StreamCount()
# SubscriptionView's streams per client key (views.py: stream_limit_key, max_streams_per_client).
client_streams = StreamCount()


def max_streams() -> int | None:
    limit = conf.get("MAX_STREAMS")
    return None if limit is None else int(limit)


def stats() -> dict[str, Any]:
    """This process's stream count, its limit and how many streams it refused."""
    return {
        "open": open_streams.open(PROCESS),
        "max": max_streams(),
        "refused": open_streams.refused,
        "refused_per_client": client_streams.refused,
        "clients": client_streams.total(),
    }


def hold_until_finished(response: Any, lease: Lease) -> None:
    """Release ``lease`` when ``response``'s request ends (see the module docstring)."""
    request = SyncToAsync.thread_sensitive_context.get(None)
    if request is not None:
        # Weakly: Django 6.1 may end a request without request_finished, and its context can
        # outlive the response; the lease must still go with the response.
        with _lock:
            _leases.setdefault(request, []).append(weakref.ref(lease))
    closers: list[Any] = response._resource_closers
    closers.append(lease.release)


def stream_lease(content: object) -> Lease | None:
    """``EventSourceResponse``'s admission: a lease of the process's count, or ``None`` (503)."""
    lease = open_streams.take(PROCESS, max_streams())
    if lease is None:
        metrics.record().refused("max_streams")
        return None
    if metrics.record().enabled:  # labelled only when counted, so that the gauge pairs up
        if hasattr(content, "groups"):
            lease.label = "multi"
        else:
            lease.label = metrics.stream_label(getattr(content, "group", None))
        metrics.record().stream_opened(lease.label)
    return lease


_leases: weakref.WeakKeyDictionary[object, list[weakref.ref[Lease]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _release_finished(**kwargs: Any) -> None:
    request = SyncToAsync.thread_sensitive_context.get(None)
    if request is None:
        return
    with _lock:
        leases = _leases.pop(request, ())
    for reference in leases:
        lease = reference()
        if lease is not None:
            lease.release()


request_finished.connect(_release_finished, dispatch_uid="django_sse.limits.release_finished")


async def limit_per_client(view: Any, request: Any, response: Any) -> Any:
    """``SubscriptionView``'s limit per client: ``response``, or a 429 when the client of
    ``request`` (``view.stream_limit_key``) holds ``view.max_streams_per_client`` streams."""
    from django.http import HttpResponse

    from .live.access import call
    from .response import EventSourceResponse

    limit = view.max_streams_per_client
    if limit is None or not isinstance(response, EventSourceResponse):
        return response
    if response.status_code != 200:
        return response
    user = await call(view.get_user, request)
    key: str | None = await call(view.stream_limit_key, request, user)
    if key is None:
        return response
    lease = client_streams.take(key, int(limit))
    if lease is None:
        metrics.record().refused("per_client")
        # The response built for it was never started: it holds nothing but its own lease.
        refusal = HttpResponse("Too many event streams.", status=429, content_type="text/plain")
        for name, value in retry_after_header().items():
            refusal[name] = value
        return refusal
    hold_until_finished(response, lease)
    return response
