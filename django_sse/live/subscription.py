"""``subscribe(group)``: the live events of a group, after those a reconnecting client missed.

A subscription joins the hub first; from then on the hub dispatches the group's events to it in
sequence order, without gap or duplicate (see hub.py). With a ``last_event_id`` it then replays
the events the client missed from the log (replaying.py), and goes live where the log meets
the hub. When the hub reports events lost (``gap``), the subscriber gets a ``reset`` event: its
id is where the client resumes from. What it may write on one connection is bounded
(allowance.py): past ``SUBSCRIBER_MAX_BYTES`` it ends and its client resumes on a new one.

``EventSourceResponse`` drives a ``Subscription`` directly (it is a ``Source``, the response's
one interface, as the generator source is), so a subscriber costs no task of its own (a
replaying one has a task while it reads a page). It is also a plain async iterator of
``EncodedEvent`` for views that wrap it in their own generator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from asgiref.sync import async_to_sync

from .. import metrics
from ..encoding import EncodedEvent, encode_event
from ..events import ServerSentEvent
from .backpressure import Backpressure
from .delivery import EventKey, PublishedEvent
from .filtering import EventFilter as EventFilter  # re-exported: filters are typed with it
from .filtering import SafeFilter
from .groups import validate_group
from .iteration import EventIterator
from .lifecycle import Lifecycle
from .replay import get_log
from .replaying import ReplayingSource
from .replaying import resume_position as resume_position  # re-exported for multi.py

RESET_EVENT = "reset"


def reset_event(reason: str, last_event_id: str | None, resume_id: str | None) -> EncodedEvent:
    """The ``reset`` event: the events after ``last_event_id`` cannot be delivered.

    Its id is where the client's next reconnect resumes from (an empty id when there is none
    makes the browser forget the stale one).
    """
    metrics.record().reset(reason)
    event = ServerSentEvent(
        event=RESET_EVENT,
        id=resume_id or "",
        data={"reason": reason, "last_event_id": last_event_id, "resume_from": resume_id},
    )
    return EncodedEvent(encode_event(event))


class Subscription(EventIterator, Lifecycle, Backpressure, ReplayingSource):
    """One subscriber of one group (see the module docstring).

    Its parts: the response's ``Source`` and the hub's callbacks here, the per-event code;
    joining and leaving in ``Lifecycle`` (lifecycle.py); the queue bound and the byte allowance
    in ``Backpressure`` (backpressure.py); the catch-up from the log in ``ReplayingSource``
    (replaying.py); ``async for`` in ``EventIterator`` (iteration.py).
    """

    # A client cut off by a failure resumes by id: the stream ends with a ``retry:``.
    resumable = True

    def __init__(
        self,
        group: str,
        *,
        last_event_id: str | None = None,
        filter: EventFilter | None = None,
        queue_size: int | None = None,
    ) -> None:
        ReplayingSource.__init__(self, last_event_id)
        Lifecycle.__init__(self)
        Backpressure.__init__(self, queue_size)
        self.group = validate_group(group)
        self.filter = filter
        self._accepts = SafeFilter(filter) if filter is not None else None

    # --- the ``Source`` EventSourceResponse drives (open and close: lifecycle.py) ---

    def take(self) -> bytes:
        """Everything buffered, as one write: a lagging client gets its backlog coalesced.

        Never more than what is left of ``SUBSCRIBER_MAX_BYTES`` plus one event: the rest is
        dropped with the subscription, and the client resumes after the last event it got.
        """
        pending = self._pending
        if len(pending) == 1:  # the common case, without a call of BufferedSource.take
            data = pending[0]
            pending.clear()
        else:
            self._bytes.trim(pending)
            data = super().take()
        self._capacity = self.limit
        if self._bytes.spend(self, len(data)) and not pending:
            self._exhaust()
        return data

    async def wait(self, limit: float | None) -> None:
        if not self._set_up:
            await self._setup()
        future = self.waiter(limit)  # not super().wait(): a coroutine less per event
        if future is not None:
            await future

    def waiter(self, limit: float | None) -> asyncio.Future[None] | None:
        # BufferedSource.waiter's steps, written out: this runs per event and subscriber, and a
        # super() call is a tenth of what the whole wake-up costs here.
        if self._pending or self.finished or not self._set_up:
            return None
        loop = asyncio.get_running_loop()
        future = self._waiter = loop.create_future()
        if self._replaying and self._fetch is None:
            # The previous page was taken: read the next one.
            self._fetch = loop.create_task(self._fetch_pages())
        self._idle.wait(self, loop, limit)
        return future

    # --- called by the hub (end: lifecycle.py) ---

    def push(self, delivery: PublishedEvent) -> bool:
        if self._closed:
            return False
        if self._replaying:
            return True  # the log has it: a page will bring it
        floor = self._replayed_up_to
        if floor is not None:
            if delivery.position <= floor and delivery.position[0] == floor[0]:
                return True  # replayed already
            # The hub dispatches in order: nothing after this is below it.
            self._replayed_up_to = None
        if self._accepts is not None and not self._accepts(delivery):
            return True
        if len(self._pending) >= self._capacity:
            return self._overflow()
        self._queue(delivery)
        waiter = self._waiter  # _wake(), inlined: this runs per event and subscriber
        if waiter is not None and self._hub is not None:
            self._waiter = None
            self._hub.wake(waiter)
        return True

    def reset(self, reason: str, position: EventKey) -> bool:
        """The hub lost the events up to ``position``: say so, then go on live after it."""
        if self._closed:
            return False
        if self._replaying:
            return True  # the log pages check themselves, and report what they cannot read
        self._replayed_up_to = None
        self._queue_reset(reason, None, position)
        self._wake()
        return True

    # --- internals ---

    def _queue(self, delivery: PublishedEvent) -> None:
        """Buffer one event for the client (a member of a multi-group stream rewrites its id)."""
        self._pending.append(delivery.wire)

    def _queue_reset(
        self, reason: str, last_event_id: str | None, position: EventKey | None
    ) -> None:
        self._pending.append(reset_event(reason, last_event_id, self._resume_id(position)))

    def _wake(self) -> None:
        # Through the hub, which wakes the streams of one dispatch in batches (hub.py). A
        # waiter exists only once set up, and the hub is known from then on.
        waiter = self._waiter
        if waiter is not None and self._hub is not None:
            self._waiter = None
            self._hub.wake(waiter)


def subscribe(
    group: str | Sequence[str],
    *,
    last_event_id: str | None = None,
    filter: EventFilter | None = None,
    queue_size: int | None = None,
) -> Subscription:
    """Subscribe to ``group``: ``return EventSourceResponse(subscribe("items.item", ...))``.

    ``group`` may be a list of names: one connection for all of them, resumable per group, with
    ids ``<index of the group>:<cursor>`` (multi.py; at most ``cursor.MAX_GROUPS`` names).

    ``last_event_id`` (from ``get_last_event_id(request)``) first replays what the client
    missed, or sends a ``reset`` event when that is no longer possible. ``filter`` is called
    with each ``PublishedEvent`` (``.id``, ``.event``, ``.data``) and keeps the events it
    returns true for. ``queue_size`` overrides ``DJANGO_SSE["SUBSCRIBER_QUEUE"]`` for this
    subscriber. Raises ``ValueError`` at once for an invalid group name.
    """
    if not isinstance(group, str):
        from .multi import subscribe_many  # multi.py builds on this module

        return subscribe_many(
            group, last_event_id=last_event_id, filter=filter, queue_size=queue_size
        )
    return Subscription(group, last_event_id=last_event_id, filter=filter, queue_size=queue_size)


async def latest_event_id(group: str | Sequence[str]) -> str | None:
    """The id of ``group``'s newest event: where a page rendered now should resume from.

    Read it *before* querying the state a page renders, and pass it to the template tag
    (``{% sse_stream "items-live" last_event_id=latest %}``): every change after the read is
    then replayed when the page connects, so nothing is lost between rendering and connecting.
    For a group without events yet it is ``"<epoch>-0"`` (the log starts the group's epoch), so
    that the first event is replayed too. ``None`` when replay is turned off.

    For a list of groups (a multi-group feed) it is an id of that stream: ``0:<cursor>`` with
    every group's newest position, sealed (counts stay hidden from the page, see cursor.py).
    """
    if not isinstance(group, str):
        from .multi import latest_multi_id  # multi.py builds on this module

        return await latest_multi_id(group)
    return await get_log().newest(validate_group(group))


def latest_event_id_sync(group: str | Sequence[str]) -> str | None:
    """``latest_event_id`` for sync views."""
    return async_to_sync(latest_event_id)(group)
