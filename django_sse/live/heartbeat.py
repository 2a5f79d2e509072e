"""The hub's watchdog: numbered heartbeats through the channel layer to the hub's own channel.

A broker connection can fail without ``receive()`` ever raising (see hub.py), so on a layer
other than the in-memory one the hub sends itself a heartbeat every ``HEARTBEAT_INTERVAL``
seconds. A heartbeat that cannot be sent, one that is lost (the next one arrives first) or
silence for ``HEARTBEAT_MISSES`` intervals is a failure of the layer. Every ``AUDIT_EVERY``
heartbeats the hub also audits its groups' positions against the log's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels.exceptions import ChannelFull  # type: ignore[import-untyped]
from channels.layers import BaseChannelLayer  # type: ignore[import-untyped]

HEARTBEAT_TYPE = "django_sse.heartbeat"
HEARTBEAT_INTERVAL = 1.0
# Intervals without a heartbeat back before the layer is taken for failed.
HEARTBEAT_MISSES = 5
# Heartbeats between two audits of the groups' positions against the log (see hub.py).
AUDIT_EVERY = 5


class LayerFailure(ConnectionError):
    """The channel layer lost or stopped delivering this process's messages."""


class Heartbeat:
    """Sends the heartbeats of one channel and checks those that come back."""

    def __init__(
        self,
        layer: BaseChannelLayer,
        on_failure: Callable[[Exception], None],
        on_audit: Callable[[], None],
    ) -> None:
        self._layer = layer
        self._on_failure = on_failure
        self._on_audit = on_audit
        self.task: asyncio.Task[None] | None = None
        self._heard = 0  # the last heartbeat received on the current channel

    def start(self, channel: str) -> None:
        self._heard = 0
        self.task = asyncio.get_running_loop().create_task(self._watch(channel))

    def forget(self) -> None:
        """The channel is gone (its task was cancelled by the hub)."""
        self.task = None
        self._heard = 0

    def received(self, number: object) -> bool:
        """A heartbeat came back; ``False`` when one before it was lost."""
        if number != self._heard + 1:
            return False
        self._heard += 1
        return True

    async def _watch(self, channel: str) -> None:
        sent = 0
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            if sent - self._heard >= HEARTBEAT_MISSES:
                self._on_failure(
                    LayerFailure("The channel layer stopped delivering to this process")
                )
                return
            try:
                await self._layer.send(channel, {"type": HEARTBEAT_TYPE, "n": sent + 1})
            except ChannelFull:
                # A burst filled the channel (RedisChannelLayer drops events past its capacity:
                # the order check reads them from the log). The layer works: try again later.
                continue
            except Exception as exc:
                self._on_failure(exc)
                return
            sent += 1
            if sent % AUDIT_EVERY == 0:
                self._on_audit()
