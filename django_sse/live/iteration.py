"""A subscription as a plain async iterator of encoded events, for views that wrap it.

``EventSourceResponse`` drives a subscription as a ``Source`` (take, wait) and never iterates
it; a view that filters or decorates events in a generator of its own iterates it with
``async for``, and closes it with ``async with`` (``async for`` never closes what it iterates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self, cast

from ..encoding import EncodedEvent

if TYPE_CHECKING:
    from .allowance import ByteAllowance


class EventIterator:
    """``async for`` and ``async with`` over a ``Subscription``, which provides the rest."""

    if TYPE_CHECKING:
        _pending: list[bytes]
        _capacity: int
        _bytes: ByteAllowance
        limit: int
        finished: bool
        error: Exception | None

        async def wait(self, limit: float | None) -> None: ...
        async def close(self) -> None: ...
        def _exhaust(self) -> None: ...

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EncodedEvent:
        while True:
            if self._pending:
                event = self._pending.pop(0)
                if not self._pending:
                    self._capacity = self.limit
                if self._bytes.spend(self, len(event)) and not self._pending:  # type: ignore[arg-type]
                    self._exhaust()
                # The hub's encoded bytes (a multi-group stream's own, rewritten with its ids).
                return cast(EncodedEvent, event)
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

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # ``async for`` never closes what it iterates: a generator closed at its own ``yield``
        # would leave this subscription in the hub. ``async with subscribe(...)`` closes it.
        await self.close()
