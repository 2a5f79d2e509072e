"""One object per event loop, closed with its loop: the replay log's and presence's Redis clients.

A ``redis.asyncio`` client belongs to the event loop that opened it, so each loop gets its own.
Code that runs a loop per call (``asyncio.run`` from sync code, asgiref's ``async_to_sync``
outside a running loop: ``latest_event_id_sync`` or ``presence_sync`` in a shell) would leave
a client and its connection behind per call: the client keeps its loop alive, so a weak
reference to the loop never dies. ``PerLoop`` closes each loop's object when that loop shuts its
async generators down, which ``asyncio.run``, ``asyncio.Runner`` and ``async_to_sync`` do before
they close the loop, without patching the loop's ``close``. ``publish_sync``'s loop
(loop_thread.py) shuts its generators down at exit.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``await per_loop.get()``: the running loop's ``T``, made on first use by ``make``.

    ``close(value)`` runs on the loop when it shuts its async generators down; a later call on
    another loop (or the same one) makes a new value.
    """

    def __init__(self, make: Callable[[], T], close: Callable[[T], Awaitable[object]]) -> None:
        self._make = make
        self._close = close
        # The loop holds its async generators weakly: the entry holds the one closing its value.
        self._values: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None]]
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._values.get(loop)
        if found is not None:
            return found[0]
        value = self._make()
        closer = self._closing(value, loop)
        self._values[loop] = (value, closer)
        await anext(closer)  # runs to its yield at once: nothing else runs meanwhile
        return value

    def __len__(self) -> int:
        """How many loops hold a value now."""
        return len(self._values)

    async def _closing(self, value: T, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None]:
        """Suspended while its loop runs; closes ``value`` when the loop shuts it down."""
        try:
            yield
        finally:
            self._values.pop(loop, None)
            await self._close(value)
