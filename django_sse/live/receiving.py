"""The hub's receive task on its channel, its heartbeat, and the layer failure that ends them.

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
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import (  # type: ignore[import-untyped]
    BaseChannelLayer,
    InMemoryChannelLayer,
)

from .. import metrics
from . import presence
from .delivery import MESSAGE_TYPE, PublishedEvent
from .heartbeat import HEARTBEAT_TYPE, Heartbeat, LayerFailure
from .membership import GroupMembership, forget_channel

logger = logging.getLogger("django_sse")

# A control message: end every local subscriber of its group (access.py: a user's streams on
# logout). It carries only ``group``; nothing of it is written to any client.
END_TYPE = "django_sse.end"


class ChannelReceiver(GroupMembership):
    """Receives from the channel while it exists; the hub (hub.py) dispatches what comes."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        super().__init__(layer)
        self._receiver: asyncio.Task[None] | None = None
        self._heartbeat = Heartbeat(layer, self._fail, self._audit)
        self.received = 0  # messages taken from the layer, for tests and benchmarks

    # --- what the hub provides ---

    def dispatch(self, delivery: PublishedEvent) -> None:
        """Hand one event to the local subscribers of its group."""
        raise NotImplementedError

    def end_group(self, group: str) -> None:
        """End every local subscriber of ``group`` (an ``END_TYPE`` message)."""
        raise NotImplementedError

    def _audit(self) -> None:
        """Compare the groups' positions with the log's (every ``AUDIT_EVERY`` heartbeats)."""
        raise NotImplementedError

    # --- the channel's receive task ---

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
