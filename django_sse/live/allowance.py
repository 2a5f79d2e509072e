"""What one stream may still write on its connection: ``SUBSCRIBER_MAX_BYTES``, and the budget.

Daphne buffers every write for a client that stopped reading, so a stream ends after
``SUBSCRIBER_MAX_BYTES`` on one connection, at an event boundary, and its client resumes from
its last id on a new one (uvicorn blocks the writer instead, and ``SUBSCRIBER_QUEUE`` applies).
Every write also counts in the process's byte budget (budget.py).
"""

from __future__ import annotations

from .. import conf
from .budget import Stream, process_budget


class ByteAllowance:
    """Bytes a stream wrote on its connection, against ``SUBSCRIBER_MAX_BYTES``."""

    __slots__ = ("limit", "written")

    def __init__(self) -> None:
        limit = conf.get("SUBSCRIBER_MAX_BYTES")
        self.limit: int | None = int(limit) if limit else None
        self.written = 0

    def trim(self, pending: list[bytes]) -> None:
        """Drop the events past what is left of the allowance, but for one."""
        if self.limit is None:
            return
        room = self.limit - self.written
        for index, event in enumerate(pending):
            room -= len(event)
            if room <= 0:
                del pending[index + 1 :]
                break

    def spend(self, stream: Stream, size: int) -> bool:
        """Count ``size`` bytes ``stream`` wrote; ``True`` once the allowance is used up."""
        self.written += size
        process_budget().spend(stream, size)
        return self.limit is not None and self.written >= self.limit
