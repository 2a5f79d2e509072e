"""The hub's side of the channel layer's groups: who is subscribed here, and the layer's joins.

A hub (hub.py) holds one layer channel per event loop. This module keeps that channel in the
layer groups that have local subscribers: the first local subscriber of a group adds the
channel to it, the last one out discards it (in the background), and a join or release waits
for the other under one lock, so that a group re-joined right after its last subscriber left is
added after it was discarded, never before. Layers forget a membership after ``group_expiry``
(a day by default): ``Renewal`` adds every membership again well before that.

Receiving from the channel and dispatching what arrives is the hub's job; this base class asks
it, through ``_open_channel`` and ``_close_channel``, to start and stop that when the channel
comes and goes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any, Protocol

from channels.layers import BaseChannelLayer  # type: ignore[import-untyped]

from . import presence
from .delivery import EventKey, PublishedEvent
from .groups import layer_group
from .ordering import GroupOrder
from .replay import get_log

logger = logging.getLogger("django_sse")

# Layers forget a group membership after ``group_expiry`` (a day by default); a hub that lives
# longer renews its memberships well before that.
MAX_RENEW_INTERVAL = 3600.0


class Subscriber(Protocol):
    def push(self, delivery: PublishedEvent) -> bool:
        """Take one live event; ``False`` means "drop me, I am gone or too far behind"."""

    def end(self, error: Exception | None = None) -> None:
        """The hub stopped serving this subscriber (it lagged, or the layer failed)."""

    def reset(self, reason: str, position: EventKey) -> bool:
        """Events up to ``position`` are lost for good; ``False`` as for ``push``."""


class LocalGroup:
    """A group's local subscribers, the join that makes the layer deliver it, and its order."""

    __slots__ = ("members", "order", "ready")

    def __init__(self, ready: asyncio.Task[None]) -> None:
        self.members: set[Subscriber] = set()
        self.ready = ready
        self.order: GroupOrder | None = None  # set once the layer delivers and the log was read


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Everyone waiting on a failed join may have been cancelled; do not warn about it then.
    if not task.cancelled():
        task.exception()


class LayerJoins:
    """The layer channel's membership of the groups that have local subscribers (see above).

    ``GroupMembership`` below keeps who those subscribers are; this adds the channel to a group
    for its first one, discards it after the last one and renews what the layer would forget.
    """

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self._groups: dict[str, LocalGroup] = {}
        # Serialises group_add/group_discard/new_channel (see the module docstring).
        self._lock = asyncio.Lock()
        self._renewal = Renewal(self)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def renewals(self) -> int:
        """Passes of the membership renewal completed."""
        return self._renewal.passes

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a background task of the hub's until it is done (``stats`` counts it)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _spawn(self, coroutine: Any) -> None:
        self.track(asyncio.get_running_loop().create_task(coroutine))

    # --- what the hub provides: receiving on the channel while it exists ---

    def _open_channel(self, channel: str) -> None:
        """``channel`` was just created: start receiving from it."""
        raise NotImplementedError

    async def _close_channel(self) -> None:
        """The channel is being let go: stop receiving from it."""
        raise NotImplementedError

    # --- joining and leaving the layer's groups ---

    async def _add(self, group: str) -> None:
        try:
            async with self._lock:
                if self.channel is None:
                    self.channel = await self.layer.new_channel()
                    self._open_channel(self.channel)
                await self.layer.group_add(layer_group(group), self.channel)
                self._renewal.start()
            # After group_add: every event after this position reaches the channel (or is
            # found missing and read from the log).
            log = get_log()
            order = GroupOrder(log, await log.position(group))
            state = self._groups.get(group)
            if state is not None and state.ready is asyncio.current_task():
                state.order = order
        except BaseException:
            state = self._groups.get(group)
            if state is not None and state.ready is asyncio.current_task():
                del self._groups[group]
            if not self._groups:
                # A join that failed (the broker is down) must not leave a channel and its tasks
                # behind when nobody else is subscribed.
                self._spawn(self._stop_if_idle())
            raise

    async def _stop_if_idle(self) -> None:
        async with self._lock:
            if not self._groups:
                await self._stop()

    async def _discard(self, group: str, state: LocalGroup) -> None:
        # Wait for the group's join outside the lock: that join needs the lock to finish.
        await asyncio.wait([state.ready])
        async with self._lock:
            if group in self._groups:
                # Re-joined meanwhile (a page reload): that join's group_add may already have run,
                # and discarding now would silence every new subscriber of the group.
                return
            channel = self.channel
            if channel is not None and not state.ready.cancelled() and not state.ready.exception():
                try:
                    await self.layer.group_discard(layer_group(group), channel)
                except Exception:
                    logger.exception("Could not leave channel-layer group %s", group)
            if not self._groups:
                await self._stop()

    async def _stop(self) -> None:
        # Nobody is left: let the channel go with its receive task (see hub.py's docstring).
        await self._renewal.stop()
        await self._close_channel()
        self.channel = None


class GroupMembership(LayerJoins):
    """Local subscribers per group: joining one adds the channel to it, the last out discards it."""

    def position(self, group: str) -> EventKey | None:
        """The last event of ``group`` dispatched here, in order (the log's when joined)."""
        state = self._groups.get(group)
        order = state.order if state is not None else None
        return order.position if order is not None else None

    def groups(self) -> dict[str, int]:
        """Local subscribers per group."""
        return {name: len(group.members) for name, group in self._groups.items()}

    def state_of(self, group: str) -> LocalGroup | None:
        return self._groups.get(group)

    def states(self) -> list[tuple[str, LocalGroup]]:
        return list(self._groups.items())

    async def join(self, group: str, subscriber: Subscriber) -> None:
        """Add ``subscriber`` to ``group``; returns once the layer delivers the group's events."""
        state = self._groups.get(group)
        if state is None:
            # The first subscriber's join runs as a task of its own so that cancelling that
            # subscriber (a client that went away at once) cannot leave the others waiting. Its
            # context is a fresh one, not a copy of the request's: the tasks it starts (receive,
            # renewal, heartbeat) live as long as the hub, and would keep whatever the first
            # request held in context variables alive with them.
            task = asyncio.get_running_loop().create_task(
                self._add(group), context=contextvars.Context()
            )
            task.add_done_callback(_retrieve)
            state = self._groups[group] = LocalGroup(task)
        state.members.add(subscriber)
        await asyncio.shield(state.ready)
        presence.tracker().entered(group, subscriber)

    def leave(self, group: str, subscriber: Subscriber) -> None:
        """Remove ``subscriber``; the last one out releases the group (in the background)."""
        presence.tracker().left(group, subscriber)
        state = self._groups.get(group)
        if state is None or subscriber not in state.members:
            return
        state.members.discard(subscriber)
        if state.members:
            return
        del self._groups[group]
        self._spawn(self._discard(group, state))


async def forget_channel(layer: BaseChannelLayer, channel: str, groups: list[str]) -> None:
    """Best effort, after a layer failure: take the abandoned ``channel`` out of ``groups``.

    The layer may still list it there (the pubsub layer would stay subscribed to them); it may
    also still be unreachable.
    """
    for group in groups:
        try:
            await asyncio.wait_for(layer.group_discard(layer_group(group), channel), 5)
        except Exception:
            logger.info("Could not leave channel-layer group %s after a failure", group)


class Renewal:
    """Adds the channel to its groups again, every half ``group_expiry`` (at most an hour)."""

    def __init__(self, membership: LayerJoins) -> None:
        self._membership = membership
        self.task: asyncio.Task[None] | None = None
        self.passes = 0

    def start(self) -> None:
        expiry = getattr(self._membership.layer, "group_expiry", None)
        if self.task is None and expiry:
            interval = min(MAX_RENEW_INTERVAL, float(expiry) / 2)
            self.task = asyncio.get_running_loop().create_task(self._renew(interval))

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def cancel(self) -> None:
        """``stop`` without waiting, from the task itself or a synchronous caller."""
        task, self.task = self.task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _renew(self, interval: float) -> None:
        membership = self._membership
        while True:
            await asyncio.sleep(interval)
            # One group at a time, each under the lock: a join or a release waits for at most one
            # renewal round trip, never for the whole pass (with the lock held for all of it, a
            # join waited 5.1 s while 20,000 groups on Redis were renewed; now 6 ms). The lock
            # is fair: a waiting join goes before the next group of the pass.
            for group in list(membership._groups):
                async with membership._lock:
                    channel = membership.channel
                    if channel is None or group not in membership._groups:
                        continue  # released meanwhile: renewing would re-add what was discarded
                    try:
                        await membership.layer.group_add(layer_group(group), channel)
                    except Exception:
                        logger.exception("Could not renew channel-layer group %s", group)
            self.passes += 1
