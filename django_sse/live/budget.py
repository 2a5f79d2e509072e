"""A per-process budget for the bytes event streams have written on their current connections.

``SUBSCRIBER_MAX_BYTES`` bounds one stream; this bounds them all. Daphne never blocks a write:
for a client that stopped reading, Twisted keeps whatever the application wrote, so what it
buffers for a stream is at most what that stream wrote on its current connection (measured:
1,000 frozen clients added 2.9 GB to a Daphne process; with the default budget, 169 MiB).
The budget counts the bytes every open stream of the process has written; past
``PROCESS_MAX_BYTES`` it ends the streams that have written the most (their clients reconnect
and resume by id, so nothing is lost), down to nine tenths of the budget, so that it sorts the
streams once per tenth of the budget written, not once per write.

uvicorn blocks a write once its transport buffer is full, and ``SUBSCRIBER_QUEUE`` bounds what a
stream holds then; the budget still counts there, and costs a reconnect where it ends a stream.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol

from django.core.signals import setting_changed
from django.dispatch import receiver

from .. import conf, metrics

# Trimmed down to this share of the budget, so that trimming is rare (see the module docstring).
LOW_WATER = 0.9


class Stream(Protocol):
    def end(self, error: Exception | None = None) -> None:
        """Stop at once; the client resumes from its last id on a new connection."""


class ByteBudget:
    """Bytes written per open stream, in one registry for the whole process."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.total = 0
        self.ended = 0  # streams ended for the budget, for stats and tests
        # Streams of several event loops (tests, threads) may share one process.
        self._lock = threading.Lock()
        self._written: dict[Stream, list[Any]] = {}  # stream -> [bytes, its event loop]

    def spend(self, stream: Stream, size: int) -> None:
        """Count ``size`` bytes ``stream`` wrote; end the biggest writers past the budget."""
        if self.limit is None:
            return
        with self._lock:
            entry = self._written.get(stream)
            if entry is None:
                entry = self._written[stream] = [0, asyncio.get_running_loop()]
            entry[0] += size
            self.total += size
            if self.total <= self.limit:
                return
            victims = self._trim(int(self.limit * LOW_WATER))
        for victim, loop in victims:
            self._end(victim, loop)

    def release(self, stream: Stream) -> None:
        """``stream`` ended: its connection goes, and what it wrote with it."""
        with self._lock:
            entry = self._written.pop(stream, None)
            if entry is not None:
                self.total -= entry[0]

    def _trim(self, target: int) -> list[tuple[Stream, asyncio.AbstractEventLoop]]:
        victims = []
        ranked = sorted(self._written.items(), key=lambda item: item[1][0], reverse=True)
        for stream, (written, loop) in ranked:
            if self.total <= target:
                break
            del self._written[stream]
            self.total -= written
            victims.append((stream, loop))
        self.ended += len(victims)
        metrics.record().dropped("process_budget", len(victims))
        return victims

    @staticmethod
    def _end(stream: Stream, loop: asyncio.AbstractEventLoop) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            stream.end()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(stream.end)

    def stats(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "bytes": self.total,
            "streams": len(self._written),
            "ended": self.ended,
        }


def _configured_limit() -> int | None:
    limit = conf.get("PROCESS_MAX_BYTES")
    return int(limit) if limit else None


class _Registry:
    """The process's one budget, made on first use and kept in step with the settings."""

    def __init__(self) -> None:
        self.budget: ByteBudget | None = None
        self.stale = False

    def get(self) -> ByteBudget:
        budget = self.budget
        if budget is None:
            budget = self.budget = ByteBudget(_configured_limit())
        elif self.stale:
            # Read when next used, not in the signal: settings may be invalid for a while.
            self.stale = False
            budget.limit = _configured_limit()
        return budget


_registry = _Registry()


def process_budget() -> ByteBudget:
    """The byte budget of this process (``DJANGO_SSE["PROCESS_MAX_BYTES"]``)."""
    return _registry.get()


@receiver(setting_changed)
def _limit_changed(setting: str, **kwargs: Any) -> None:
    if setting == "DJANGO_SSE":
        _registry.stale = True
