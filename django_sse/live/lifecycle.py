"""A subscription's life: it joins the hub on its first wait, and leaves it once.

``open()`` (or the first ``wait``) joins the hub, catches up from the replay log and lets the
request's database connections go. Whatever ends it first, the client's disconnect
(``close``), the hub (``end``: it lagged, or the layer failed), the byte limit or a failing
replay page, tears it down once: the buffer dropped, the waiting response woken, the process's
byte budget released.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .budget import process_budget
from .db import release_database_connections
from .hub import get_hub

if TYPE_CHECKING:
    from .delivery import EventKey, PublishedEvent
    from .hub import Hub


class Lifecycle:
    """Joining and leaving for a ``Subscription``, which provides what is declared."""

    # Joined, it lets the request's database connections go: an idle stream holds none (db.py).
    releases_database = True

    if TYPE_CHECKING:
        group: str
        error: Exception | None
        finished: bool
        _pending: list[bytes]
        _replaying: bool
        _fetch: asyncio.Task[None] | None

        async def _catch_up(self, hub: Hub) -> None: ...
        def _finish(self) -> None: ...
        # A hub member (membership.Subscriber).
        def push(self, delivery: PublishedEvent) -> bool: ...
        def reset(self, reason: str, position: EventKey) -> bool: ...

    def __init__(self) -> None:
        self._hub: Hub | None = None
        self._set_up = False
        self._closed = False

    async def open(self, first_event_wait: float = 0.0) -> None:
        """Join the hub and read the first replay page; ``wait`` does it too, the first time.

        Nothing to wait for: joining and replaying is all that can fail early.
        """
        if not self._set_up:
            await self._setup()

    async def close(self) -> None:
        """Leave the hub; safe to call more than once, and from a cancelled task."""
        if self._hub is not None:
            # Also after end(): ended during setup (overflow, a failing filter), it is still a
            # member until the group's next event. leave() is idempotent.
            self._hub.leave(self.group, self)
        fetch = self._fetch
        if fetch is not None and fetch is not asyncio.current_task():
            fetch.cancel()
            await asyncio.wait([fetch])
        self._tear_down()

    def end(self, error: Exception | None = None) -> None:
        """Stop, dropping what is buffered: the client resumes from its last id on reconnect."""
        if self._closed:
            return
        self.error = error
        fetch = self._fetch
        if fetch is not None and fetch is not asyncio.current_task():
            fetch.cancel()
        self._tear_down()

    def _tear_down(self) -> None:
        """What ``close`` and ``end`` both do, once."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._replaying = False
        self._finish()
        process_budget().release(self)

    async def _setup(self) -> None:
        self._set_up = True
        try:
            hub = self._hub = get_hub()
            await hub.join(self.group, self)
            await self._catch_up(hub)
            if self.releases_database:
                await release_database_connections()
        except Exception as exc:
            self.error = exc
            await self.close()
            self.finished = True
