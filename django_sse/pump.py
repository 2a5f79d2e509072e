"""Drive a view's generator in a task of its own, into a bounded buffer of encoded events.

The response has to wake up for two reasons: the source produced something, or the stream has
been idle for the ping interval. Waiting on the generator directly with a timeout would cancel
its pending step (and lose or corrupt the item being produced). So the generator runs in its own
task, the response waits on the buffer, and the buffer's size bounds how far the generator runs
ahead. Whatever piles up while the client is slow goes out as one coalesced write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .buffer import BufferedSource, resolve
from .encoding import encode_item


class GeneratorSource(BufferedSource):
    """The source of a view's generator: a task that encodes its items into the buffer."""

    # A generator cannot be resumed: its stream ends with it, and its errors are raised early.
    resumable = False

    def __init__(self, source: AsyncIterator[Any], *, limit: int) -> None:
        super().__init__()
        self._source = source
        self._limit = max(1, limit)
        self._writable: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, first_event_wait: float = 0.0) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if first_event_wait:
            await self.wait(first_event_wait)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for item in self._source:
                chunk = encode_item(item)
                if not chunk:
                    continue
                self._pending.append(chunk)
                self._wake()
                if len(self._pending) >= self._limit:
                    self._writable = loop.create_future()
                    await self._writable
        except Exception as exc:
            self.error = exc
        finally:
            self._finish()

    def take(self) -> bytes:
        data = super().take()
        if self._writable is not None:
            resolve(self._writable)
            self._writable = None
        return data

    async def close(self) -> None:
        """Stop the generator and let its ``finally`` blocks run before returning."""
        self._idle.cancel()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()
