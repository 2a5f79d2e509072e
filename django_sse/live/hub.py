"""The per-process hub: one channel-layer channel for all local subscribers, fanning out bytes.

The textbook Channels recipe gives every connection its own layer channel, so one publish costs
one broker message per connection. Here each event loop (in a server: each process) owns one
channel, adds it to the layer groups that have local subscribers, and removes it when the last
local subscriber of a group leaves. One long-lived task receives from that channel and hands the
same encoded bytes to every subscriber's bounded buffer, synchronously: no task per subscriber,
no task per event.

Receiving from that channel, its heartbeat and what a layer failure ends are
``ChannelReceiver``'s (receiving.py).

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
from .delivery import PublishedEvent
from .membership import (
    MAX_RENEW_INTERVAL,
    LocalGroup,
    Subscriber,
)
from .ordering import Sequencer
from .receiving import END_TYPE, ChannelReceiver
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


class Hub(ChannelReceiver):
    """Subscribers of one event loop, behind one channel-layer channel.

    Joining and leaving the layer's groups is ``GroupMembership``'s (membership.py), receiving
    from the channel ``ChannelReceiver``'s (receiving.py); the hub dispatches each event in its
    group's order and fans it out.
    """

    def __init__(self, layer: BaseChannelLayer) -> None:
        super().__init__(layer)
        self._sequencer = Sequencer(self)
        # ``wake(future)`` resolves a subscriber's future, spread over turns of the loop (see
        # ``Waker``): the waker's own method, called per event and subscriber without a frame
        # of the hub's in between.
        self.wake: Callable[[asyncio.Future[None]], None] = Waker().wake

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

    def _audit(self) -> None:
        self._spawn(self._sequencer.audit())

    def end_group(self, group: str) -> None:
        """End every local subscriber of ``group`` (an ``END_TYPE`` message)."""
        state = self._groups.get(group)
        for subscriber in list(state.members) if state is not None else ():
            self.leave(group, subscriber)
            subscriber.end()


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
