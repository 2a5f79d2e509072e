"""Drive a stream's source in a task of its own, into a bounded buffer of encoded events.

The response has to wake up for two reasons: the source produced something, or the stream has
been idle for the ping interval. Waiting on the source directly with a timeout would cancel its
pending step (and lose or corrupt the item being produced). So the source runs in its own task,
the response waits on the buffer, and the buffer's size bounds how far the source runs ahead.
Whatever piles up while the client is slow goes out as one coalesced write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .encoding import encode_item
from .source import Source


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class StreamPump(Source):
    """The source of a view's generator: a task that encodes its items into the buffer."""

    # A generator cannot be resumed: its stream ends with it, and its errors are raised early.
    resumable = False

    def __init__(self, source: AsyncIterator[Any], *, limit: int) -> None:
        self._source = source
        self._limit = max(1, limit)
        self._chunks: list[bytes] = []
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.finished = False
        self.error: Exception | None = None

    @property
    def has_data(self) -> bool:
        return bool(self._chunks)

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
                self._chunks.append(chunk)
                if self._readable is not None:
                    _resolve(self._readable)
                if len(self._chunks) >= self._limit:
                    self._writable = loop.create_future()
                    await self._writable
        except Exception as exc:
            self.error = exc
        finally:
            self.finished = True
            if self._readable is not None:
                _resolve(self._readable)

    def take(self) -> bytes:
        """Everything buffered, as one write."""
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        if self._writable is not None:
            _resolve(self._writable)
            self._writable = None
        return data

    def waiter(self, limit: float | None) -> asyncio.Future[None] | None:
        """A future done when there is data, the source has finished, or ``limit`` seconds passed.

        ``None`` when there is no need to wait.
        """
        if self._chunks or self.finished:
            return None
        self._disarm()
        loop = asyncio.get_running_loop()
        future = self._readable = loop.create_future()
        if limit:
            self._timer = loop.call_later(limit, _resolve, future)
        return future

    async def wait(self, limit: float | None) -> None:
        """Return when there is data, the source has finished, or ``limit`` seconds passed."""
        future = self.waiter(limit)
        if future is not None:
            try:
                await future
            finally:
                self._disarm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        """Stop the source and let its ``finally`` blocks run before returning."""
        self._disarm()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()
