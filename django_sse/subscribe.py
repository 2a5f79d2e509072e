"""``subscribe(group)``: the live events of a group, after those a reconnecting client missed.

Order matters for "no gap, no duplicate": the subscription joins the hub first (from then on
live events are buffered), then reads the replay log after ``last_event_id``. Everything
published before the join is in the log, everything after reaches the buffer, and what is in
both is dropped by id: the log's ids grow monotonically, so a live event whose id is not newer
than the last replayed one was replayed already.

``EventSourceResponse`` drives a ``Subscription`` directly (it has the same small interface as
the response's ``StreamPump``), so a subscriber costs no task of its own. It is also a plain
async iterator of ``EncodedEvent`` for views that wrap it in their own generator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from asgiref.sync import async_to_sync

from . import conf
from .budget import process_budget
from .db import release_database_connections
from .delivery import Delivery, EventKey, parse_id
from .encoding import EncodedEvent, encode_event
from .events import ServerSentEvent
from .groups import validate_group
from .hub import Hub, get_hub
from .replay import get_log

logger = logging.getLogger("django_sse")

EventFilter = Callable[[Delivery], bool]

RESET_EVENT = "reset"


def reset_event(reason: str, last_event_id: str | None, newest_id: str | None) -> EncodedEvent:
    """The ``reset`` event: the events after ``last_event_id`` cannot be replayed.

    Its id is the newest one of the group, so that the client's next reconnect resumes from here
    (an empty id when the group has none yet makes the browser forget the stale one).
    """
    event = ServerSentEvent(
        event=RESET_EVENT,
        id=newest_id or "",
        data={"reason": reason, "last_event_id": last_event_id, "resume_from": newest_id},
    )
    return EncodedEvent(encode_event(event))


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class Subscription:
    """One subscriber of one group (see the module docstring)."""

    def __init__(
        self,
        group: str,
        *,
        last_event_id: str | None = None,
        filter: EventFilter | None = None,
        queue_size: int | None = None,
        release_database: bool = True,
    ) -> None:
        self.group = validate_group(group)
        self.last_event_id = last_event_id
        self.filter = filter
        self.limit = max(1, int(conf.get("SUBSCRIBER_QUEUE") if queue_size is None else queue_size))
        max_bytes = conf.get("SUBSCRIBER_MAX_BYTES")
        self.max_bytes: int | None = int(max_bytes) if max_bytes else None
        self.written = 0
        self._release_database = release_database
        # A list, not a deque: an empty deque costs 760 bytes, times every idle connection.
        self._pending: list[EncodedEvent] = []
        self._capacity = self.limit
        # Live events that arrive while the replay log is read; ``None`` once live.
        self._early: list[Delivery] | None = []
        self._floor: EventKey | None = None
        self._waiter: asyncio.Future[None] | None = None
        # The ping timer: armed once and moved on lazily, not re-created for every event (with
        # 5,000 subscribers that was 50,000 timers a second, a tenth of the fan-out's CPU).
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._hub: Hub | None = None
        self._set_up = False
        self._closed = False
        self.finished = False
        self.error: Exception | None = None
        self.lagged = False
        self.exhausted = False  # wrote SUBSCRIBER_MAX_BYTES: the client goes on on a new connection

    # --- the interface EventSourceResponse drives (the same as StreamPump's) ---

    @property
    def has_data(self) -> bool:
        return bool(self._pending)

    def start(self) -> None:
        """Nothing to start: joining needs to await, and happens in the first ``wait``."""

    def take(self) -> bytes:
        """Everything buffered, as one write: a lagging client gets its backlog coalesced."""
        pending = self._pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._capacity = self.limit
        self._spend(len(data))
        return data

    async def setup(self) -> None:
        """Join the hub and replay; ``wait`` does it too, the first time it is called."""
        if not self._set_up:
            await self._setup()

    async def wait(self, limit: float | None) -> None:
        """Return when there is data, the subscription ended, or ``limit`` seconds passed."""
        if not self._set_up:
            await self._setup()
        future = self.waiter(limit)
        if future is not None:
            await future

    def waiter(self, limit: float | None) -> asyncio.Future[None] | None:
        """``wait`` without a coroutine: a future to await, or ``None`` when there is no need.

        The response awaits this once per delivery; a coroutine object less per wake-up is
        garbage the collector never has to trace (it dominated fan-out to thousands).
        """
        if self._pending or self.finished or not self._set_up:
            return None
        loop = asyncio.get_running_loop()
        future = self._waiter = loop.create_future()
        if limit:
            deadline = self._deadline = loop.time() + limit
            if self._timer is None or self._timer_when > deadline:
                self._arm(loop, deadline)
        else:
            self._deadline = None
        return future

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = loop.call_at(when, self._timer_fired, loop)

    def _timer_fired(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        deadline = self._deadline
        if self._waiter is None or deadline is None:
            return  # the next wait arms it again
        if deadline <= self._timer_when:
            _resolve(self._waiter)
        else:  # events came since it was armed: the stream has not been idle that long
            self._arm(loop, deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        """Leave the hub; safe to call more than once, and from a cancelled task."""
        if self._hub is not None:
            # Also after end(): ended during setup (overflow, a failing filter), it is still a
            # member until the group's next event. leave() is idempotent.
            self._hub.leave(self.group, self)
        if self._closed:
            return
        self._closed = True
        self.finished = True
        self._pending.clear()
        self._early = None
        self._disarm()
        _resolve(self._waiter)
        process_budget().release(self)

    # --- a plain async iterator of encoded events ---

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> EncodedEvent:
        while True:
            if self._pending:
                event = self._pending.pop(0)
                if not self._pending:
                    self._capacity = self.limit
                self._spend(len(event))
                return event
            if self.finished:
                if self.error is not None:
                    error, self.error = self.error, None
                    raise error
                raise StopAsyncIteration
            try:
                await self.wait(None)
            except BaseException:
                # Cancelled with the generator iterating us (a disconnect): leave the group.
                await self.close()
                raise

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # ``async for`` never closes what it iterates: a generator closed at its own ``yield``
        # would leave this subscription in the hub. ``async with subscribe(...)`` closes it.
        await self.close()

    # --- called by the hub ---

    def push(self, delivery: Delivery) -> bool:
        if self._closed:
            return False
        if self._early is not None:
            self._early.append(delivery)
            return len(self._early) <= self.limit or self._overflow()
        if self._floor is not None and delivery.key <= self._floor:
            return True
        if self.filter is not None and not self._accepts(delivery):
            return not self._closed
        if len(self._pending) >= self._capacity:
            return self._overflow()
        self._pending.append(delivery.wire)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if self._hub is not None:
                self._hub.waker.wake(waiter)
            else:
                _resolve(waiter)
        return True

    def end(self, error: Exception | None = None) -> None:
        """Stop, dropping what is buffered: the client resumes from its last id on reconnect."""
        if self._closed:
            return
        self._closed = True
        self.finished = True
        self.error = error
        self._pending.clear()
        self._early = None
        self._disarm()
        _resolve(self._waiter)
        process_budget().release(self)

    # --- internals ---

    def _spend(self, size: int) -> None:
        self.written += size
        process_budget().spend(self, size)
        if self.max_bytes is None or self.written < self.max_bytes or self._pending:
            return
        # End after these bytes, at an event boundary: the client resumes from its last id on a
        # new connection. Daphne buffers every write for a client that stopped reading, and
        # this is the bound on that buffer (uvicorn blocks the writer, and SUBSCRIBER_QUEUE
        # applies).
        self.exhausted = True
        if self._hub is not None:
            self._hub.leave(self.group, self)
        self.end()

    def _overflow(self) -> bool:
        # Never slow the others down: this client reconnects and replays what it missed.
        self.lagged = True
        logger.info("Closing a subscriber of %s that fell %d events behind", self.group, self.limit)
        self.end()
        return False

    def _accepts(self, delivery: Delivery) -> bool:
        assert self.filter is not None
        try:
            return bool(self.filter(delivery))
        except Exception as exc:
            logger.exception("An event filter of %s failed; closing that subscriber", self.group)
            self.end(exc)
            return False

    async def _setup(self) -> None:
        self._set_up = True
        try:
            hub = self._hub = get_hub()
            await hub.join(self.group, self)
            if self.last_event_id is not None:
                replay = await get_log().since(self.group, self.last_event_id)
                if replay.reset is not None:
                    self._pending.append(
                        reset_event(replay.reset, self.last_event_id, replay.newest_id)
                    )
                    self._floor = parse_id(replay.newest_id)
                else:
                    self._floor = parse_id(self.last_event_id)
                    for delivery in replay.deliveries:
                        if self.filter is None or self._accepts(delivery):
                            self._pending.append(delivery.wire)
                        self._floor = delivery.key
            early, self._early = self._early, None
            self._capacity = self.limit + len(self._pending)
            for delivery in early or ():
                if not self.push(delivery):
                    break
            if self._release_database:
                await release_database_connections()
        except Exception as exc:
            self.error = exc
            await self.close()
            self.finished = True


def subscribe(
    group: str,
    *,
    last_event_id: str | None = None,
    filter: EventFilter | None = None,
    queue_size: int | None = None,
) -> Subscription:
    """Subscribe to ``group``: ``return EventSourceResponse(subscribe("items.item", ...))``.

    ``last_event_id`` (from ``get_last_event_id(request)``) first replays what the client
    missed, or sends a ``reset`` event when that is no longer possible. ``filter`` is called
    with each ``Delivery`` (``.id``, ``.event``, ``.data``) and keeps the events it returns true
    for. ``queue_size`` overrides ``DJANGO_SSE["SUBSCRIBER_QUEUE"]`` for this subscriber.
    Raises ``ValueError`` at once for an invalid group name.
    """
    return Subscription(group, last_event_id=last_event_id, filter=filter, queue_size=queue_size)


async def latest_event_id(group: str) -> str | None:
    """The id of ``group``'s newest event: where a page rendered now should resume from.

    Read it *before* querying the state a page renders, and pass it to the template tag
    (``{% sse_stream "items-live" last_event_id=latest %}``): every change after the read is
    then replayed when the page connects, so nothing is lost between rendering and connecting.
    ``None`` when nothing can be resumed from (no event in a Redis log yet, replay turned off).
    """
    return await get_log().newest(validate_group(group))


def latest_event_id_sync(group: str) -> str | None:
    """``latest_event_id`` for sync views."""
    return async_to_sync(latest_event_id)(group)
