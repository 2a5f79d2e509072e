"""What an ``EventSourceResponse`` streams from: the one interface its body drives.

Two kinds of source exist. A generator source (``GeneratorSource``, pump.py) runs the view's
generator in a task of its own; a subscription (``django_sse.live``) is filled by the hub and
costs no task. The response and its body know only this protocol, so the wire format and the
response do not depend on the pub/sub layer: the arrow runs from ``live`` to here, never back.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


@runtime_checkable
class Source(Protocol):
    """A buffer of encoded events that the response body drains.

    ``resumable``: a client cut off by a failure of this source can come back and resume (a
    subscription replays by id), so its stream ends with a jittered ``retry:`` rather than
    silently, and only a configuration error is raised while the status can still change.
    """

    resumable: bool
    finished: bool
    error: Exception | None

    @property
    def has_data(self) -> bool: ...

    async def open(self, first_event_wait: float = 0.0) -> None:
        """Start; idempotent. A generator source then waits up to ``first_event_wait`` seconds
        for its first event, so that an early exception can still change the status."""

    def take(self) -> bytes: ...

    async def wait(self, limit: float | None) -> None: ...

    def waiter(self, limit: float | None) -> asyncio.Future[None] | None: ...

    async def close(self) -> None: ...
