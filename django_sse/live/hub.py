"""The per-process hub: one channel-layer channel for all local subscribers, fanning out bytes.

The textbook Channels recipe gives every connection its own layer channel, so one publish costs
one broker message per connection. Here each event loop (in a server: each process) owns one
channel, adds it to the layer groups that have local subscribers, and removes it when the last
local subscriber of a group leaves. One long-lived task receives from that channel and hands the
same encoded bytes to every subscriber's bounded buffer, synchronously: no task per subscriber,
no task per event.

``receive()`` is never wrapped in a timeout: ``RedisPubSubChannelLayer`` unsubscribes a channel
whose ``receive()`` is cancelled and drops what was queued for it. The receive task is cancelled
only when no group is left or the layer failed (``_fail``), and the channel is abandoned with it.

A broker connection can fail without ``receive()`` ever raising: ``RedisPubSubChannelLayer``
logs the error, reconnects and resubscribes by itself, and whatever was published before it
resubscribed is silently gone. So on a layer other than the in-memory one the hub sends itself a
numbered heartbeat every ``HEARTBEAT_INTERVAL`` seconds (heartbeat.py). A heartbeat that cannot
be sent, one that is lost (the next one arrives first) or silence for ``HEARTBEAT_MISSES``
intervals means live events may have been lost: the hub ends every local subscriber, whose
clients reconnect with their last id and get what they missed from the replay log, and the next
join starts over.

**Order.** The replay log numbers each group's events without gaps (``<epoch>-<sequence>``,
see replay.py), but publishers in several coroutines or processes send them through the layer
in any order, and the layer may drop some. So the hub dispatches each group's events in
sequence order: it knows the next sequence it expects (on the group's first join it reads the
log's position), holds an event that comes early, and drops one it has dispatched already. A
missing event is waited for ``GAP_WAIT`` seconds (it is usually in flight), then read from the
log: the log write of an event happens before its live send, so every event before one that
arrived is already there. What the log cannot give (replay off, trimmed, Redis down) is told to
the group's subscribers as a ``reset`` (reason ``gap``), never skipped silently. Every
``AUDIT_EVERY`` heartbeats the hub also compares its groups' positions with the log's, so that an
event whose live send never happened (its publisher was killed after the log write) is found
even when no later event reveals the gap. Gaps are filled per process and group, not per
subscriber. Events numbered by another process's memory log (a configuration the W005 check
warns about) cannot be read back: they are dispatched as they come.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from channels.layers import (  # type: ignore[import-untyped]
    BaseChannelLayer,
    InMemoryChannelLayer,
    get_channel_layer,
)
from django.core.exceptions import ImproperlyConfigured

from .. import conf, metrics
from . import presence
from .delivery import MESSAGE_TYPE, PublishedEvent
from .heartbeat import HEARTBEAT_TYPE, Heartbeat, LayerFailure
from .membership import (
    MAX_RENEW_INTERVAL,
    GroupMembership,
    LocalGroup,
    Subscriber,
    forget_channel,
)
from .ordering import Sequencer
from .state import live_state

__all__ = [
    "END_TYPE",
    "MAX_RENEW_INTERVAL",
    "WAKE_BATCH",
    "Hub",
    "LocalGroup",
    "Subscriber",
    "Waker",
    "current_layer",
    "get_hub",
    "hub_loops",
    "listening_loops",
]

logger = logging.getLogger("django_sse")

# A control message: end every local subscriber of its group (access.py: a user's streams on
# logout). It carries only ``group``; nothing of it is written to any client.
END_TYPE = "django_sse.end"


def current_layer() -> BaseChannelLayer:
    """The configured channel layer, or a process-wide in-memory one when none is configured."""
    layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
    if layer is None:
        if conf.get("CHANNEL_LAYER") != "default":
            raise ImproperlyConfigured(
                f'DJANGO_SSE["CHANNEL_LAYER"] = {conf.get("CHANNEL_LAYER")!r} is not in '
                "CHANNEL_LAYERS."
            )
        if live_state.fallback_layer is None:
            live_state.fallback_layer = InMemoryChannelLayer()
        return live_state.fallback_layer
    if "groups" not in getattr(layer, "extensions", ["groups"]):
        raise ImproperlyConfigured("django_sse needs a channel layer with the groups extension.")
    return layer


# How many subscribers one turn of the event loop wakes (see Waker).
WAKE_BATCH = 256


class Waker:
    """Wakes the subscribers an event reached, ``WAKE_BATCH`` per turn of the event loop.

    Resolving a future schedules its task's wake-up: two objects the cyclic collector tracks
    (a handle and its arguments). Resolving 5,000 at once, inside one dispatch, keeps 10,000
    of them alive through several young collections, which promotes them to the oldest
    generation and triggers full collections over every connection's objects (measured: a
    quarter of a 5,000-subscriber fan-out's CPU). A few hundred at a time die young. The events
    themselves are already in each subscriber's buffer, in order; only the wake-up is spread.
    """

    def __init__(self) -> None:
        self._futures: deque[asyncio.Future[None]] = deque()
        self._scheduled = False

    def wake(self, future: asyncio.Future[None]) -> None:
        self._futures.append(future)
        if not self._scheduled:
            self._scheduled = True
            future.get_loop().call_soon(self._run, future.get_loop())

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        futures = self._futures
        for _ in range(min(WAKE_BATCH, len(futures))):
            future = futures.popleft()
            if not future.done():
                future.set_result(None)
        if futures:
            loop.call_soon(self._run, loop)  # after the tasks just woken
        else:
            self._scheduled = False
            metrics.record().woken(loop)


class Hub(GroupMembership):
    """Subscribers of one event loop, behind one channel-layer channel.

    Joining and leaving the layer's groups is ``GroupMembership``'s (membership.py); the hub
    receives from the channel, dispatches each event in its group's order and fans it out.
    """

    def __init__(self, layer: BaseChannelLayer) -> None:
        super().__init__(layer)
        self._receiver: asyncio.Task[None] | None = None
        self._sequencer = Sequencer(self)
        self._heartbeat = Heartbeat(layer, self._fail, lambda: self._spawn(self._sequencer.audit()))
        # ``wake(future)`` resolves a subscriber's future, spread over turns of the loop (see
        # ``Waker``): the waker's own method, called per event and subscriber without a frame
        # of the hub's in between.
        self.wake: Callable[[asyncio.Future[None]], None] = Waker().wake
        self.received = 0  # messages taken from the layer, for tests and benchmarks

    @property
    def channels(self) -> int:
        """How many channel-layer channels this hub holds (0 or 1)."""
        return 0 if self.channel is None else 1

    def stats(self) -> dict[str, Any]:
        """A snapshot for health checks and leak tests: what this hub holds right now.

        ``tasks`` counts the hub's own live tasks (receive, renew, heartbeat, gap fillers, pending
        group releases and audits): with
        no subscriber left and the background work done, everything here is zero or empty.
        """
        own = [self._receiver, self._renewal.task, self._heartbeat.task, *self._background]
        return {
            "groups": self.groups(),
            "subscribers": sum(len(group.members) for group in self._groups.values()),
            "channels": self.channels,
            "tasks": sum(1 for task in own if task is not None and not task.done()),
            "received": self.received,
        }

    def _open_channel(self, channel: str) -> None:
        # A process that serves streams also relays what a failed publish or a crashed process
        # left in the outbox (django_sse.live.outbox).
        from .outbox import periodic_relay

        periodic_relay.ensure_running()
        self._receiver = asyncio.get_running_loop().create_task(self._receive(channel))
        if not isinstance(self.layer, InMemoryChannelLayer):
            self._heartbeat.start(channel)

    async def _close_channel(self) -> None:
        for task in (self._receiver, self._heartbeat.task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
        self._receiver = None
        self._heartbeat.forget()

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("The channel layer failed; closing this process's subscribers")
                self._fail(exc)
                return
            self.received += 1
            kind = message.get("type")
            if kind == HEARTBEAT_TYPE:
                if not self._heartbeat.received(message.get("n")):
                    self._fail(LayerFailure("The channel layer lost a heartbeat of this process"))
                    return
                continue
            if kind == END_TYPE:
                self.end_group(message["group"])
                continue
            if kind != MESSAGE_TYPE:
                continue
            metrics.record().received(message)
            try:
                self.dispatch(PublishedEvent.from_message(message))
            except Exception:
                logger.exception("Could not dispatch a message from the channel layer")

    def dispatch(self, delivery: PublishedEvent) -> None:
        """Hand one event to every local subscriber of its group, in the group's order."""
        state = self._groups.get(delivery.group)
        if state is None:
            return
        order = state.order
        if order is None:
            return  # still joining: the event is at or before the position about to be read
        if delivery.origin != order.origin:
            self.fan_out(state, delivery)  # another process's memory log: cannot be ordered
            return
        self._sequencer.accept(state, order, delivery)

    def fan_out(self, state: LocalGroup, delivery: PublishedEvent) -> None:
        metrics.record().delivered(delivery.group, len(state.members))
        dropped = [s for s in state.members if not s.push(delivery)]
        for subscriber in dropped:
            self.leave(delivery.group, subscriber)
            subscriber.end()

    def end_group(self, group: str) -> None:
        """End every local subscriber of ``group`` (an ``END_TYPE`` message)."""
        state = self._groups.get(group)
        for subscriber in list(state.members) if state is not None else ():
            self.leave(group, subscriber)
            subscriber.end()

    def _fail(self, error: Exception) -> None:
        # Subscribers reconnect and resume by id; the next join starts over with a new channel.
        groups, self._groups = self._groups, {}
        logger.warning(
            "Channel layer failure (%s): closing %d local subscribers, they resume by id",
            error,
            sum(len(state.members) for state in groups.values()),
        )
        metrics.record().layer_failed(sum(len(state.members) for state in groups.values()))
        channel, self.channel = self.channel, None
        current = asyncio.current_task()
        for task in (self._receiver, self._heartbeat.task):
            if task is not None and task is not current:
                task.cancel()
        self._renewal.cancel()
        self._receiver = None
        self._heartbeat.forget()
        for name, state in groups.items():
            for subscriber in state.members:
                presence.tracker().left(name, subscriber)
                subscriber.end(error)
        if channel is not None and groups:
            self._spawn(forget_channel(self.layer, channel, list(groups)))


def get_hub() -> Hub:
    """The hub of the running event loop (tests run several loops in one process)."""
    loop = asyncio.get_running_loop()
    layer = current_layer()
    hub = live_state.hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = live_state.hubs[loop] = Hub(layer)
    return hub


def listening_loops() -> list[asyncio.AbstractEventLoop]:
    """Event loops whose hub currently holds a channel."""
    # A stopped loop would never run what is handed to it: publish_sync would wait forever.
    return [
        loop for loop, hub in list(live_state.hubs.items()) if hub.channel and loop.is_running()
    ]


def hub_loops() -> list[asyncio.AbstractEventLoop]:
    """Every event loop that has a hub (``shutdown`` finishes those a server left stopped)."""
    return list(live_state.hubs)
