"""Wait on a condition, never on the clock: the one polling helper of the suite.

The suite runs on shared, loaded machines (2 cores, other builds beside it), where "this takes
0.2 s" is never true for long. A test waits until what it needs has happened, with a deadline
generous enough for a busy machine: the deadline only decides how long a real failure takes to
be reported, never whether a healthy run passes.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

# Seconds. Far beyond what a healthy run needs on a busy 2-core machine.
DEADLINE = 30.0
INTERVAL = 0.05


def until(condition: Callable[[], T], within: float = DEADLINE, interval: float = INTERVAL) -> T:
    """Poll ``condition`` until it returns something true; return that value.

    Fails with the last value seen if ``within`` seconds pass first.
    """
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s (last: {value!r})")
        time.sleep(interval)


@overload
async def until_async(
    condition: Callable[[], Awaitable[T]], within: float = ..., interval: float = ...
) -> T: ...


@overload
async def until_async(
    condition: Callable[[], T], within: float = ..., interval: float = ...
) -> T: ...


async def until_async(
    condition: Callable[[], T | Awaitable[T]], within: float = DEADLINE, interval: float = 0.01
) -> T:
    """``until`` for a test running on an event loop, which keeps running meanwhile.

    ``condition`` may be a coroutine function (an HTTP request to the server under test).
    """
    deadline = time.monotonic() + within
    while True:
        result = condition()
        value: T = await result if inspect.isawaitable(result) else result
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s (last: {value!r})")
        await asyncio.sleep(interval)
