"""What every app under test shares: the event model, the group, and the publishing schedule.

Every app serves the same four endpoints so that one load client drives them all:

- ``GET /health``: 200 once the server is up;
- ``GET /firehose?n=N``: one stream of ``N`` ``Tick`` events, then the end of the response;
- ``GET /stream``: a subscriber of the group ``bench`` (fan-out and idle workloads);
- ``GET /publish?n=N&rate=R&start=S``: start publishing ``N`` ticks to ``bench`` at ``R`` per
  second, numbered from ``S``, in the server process, and answer at once.

A tick carries the ``time.monotonic()`` of its publication: on Linux that clock is system-wide,
so the client (another process on the same machine) reads publish-to-receipt latency directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from pydantic import BaseModel

GROUP = "bench"


class Tick(BaseModel):
    """The typed event of every workload (``seq`` and ``t`` first: the client looks for them)."""

    seq: int
    t: float
    symbol: str
    price: float
    volume: int


def make_tick(seq: int) -> Tick:
    return Tick(seq=seq, t=time.monotonic(), symbol="ACME", price=100.0 + seq % 100 / 4, volume=seq)


def query_ints(query_string: str | bytes, **defaults: int) -> dict[str, int]:
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    parsed = parse_qs(query_string)
    return {name: int(parsed.get(name, [str(value)])[0]) for name, value in defaults.items()}


# Publisher tasks are referenced here until they finish: the loop keeps only weak references.
_tasks: set[asyncio.Task[None]] = set()


def start_publishing(
    publish: Callable[[Tick], Awaitable[object] | None], n: int, rate: int, start: int
) -> None:
    """Publish ``n`` ticks at ``rate`` per second on a fixed schedule (late ticks do not drift)."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for i in range(n):
            delay = begin + i / rate - loop.time() if rate > 0 else 0
            if delay > 0:
                await asyncio.sleep(delay)
            result = publish(make_tick(start + i))
            if result is not None:
                await result

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
