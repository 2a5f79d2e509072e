"""How a fan-out wakes its streams: a few hundred per loop turn, each stream without a coroutine.

Both exist to keep the garbage a fan-out leaves per event small and short-lived (see
``django_sse.live.hub.Waker`` and ``django_sse.stream``); these tests pin the behaviour that the
benchmarks rely on, without timing anything.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from django_sse import EventSourceResponse, publish, subscribe
from django_sse.live.hub import WAKE_BATCH, Waker, get_hub
from django_sse.stream import OPENING

_names = itertools.count()


@pytest.fixture
def group() -> str:
    return f"test-wake.g{next(_names)}"


async def test_the_waker_resolves_a_batch_per_loop_turn_in_order() -> None:
    loop = asyncio.get_running_loop()
    waker = Waker()
    futures = [loop.create_future() for _ in range(WAKE_BATCH * 2 + 10)]
    resolved: list[int] = []
    for index, future in enumerate(futures):
        future.add_done_callback(functools.partial(lambda index, _: resolved.append(index), index))
        waker.wake(future)
    assert not any(f.done() for f in futures)  # nothing happens inside the dispatch itself
    turns = 0
    while not all(f.done() for f in futures):
        await asyncio.sleep(0)  # one turn of the loop: what the batches are counted in
        turns += 1
        # Never more than one batch ahead of the turns taken so far.
        assert sum(f.done() for f in futures) <= WAKE_BATCH * turns
    assert turns >= 3
    await asyncio.sleep(0)  # the done-callbacks of the last batch
    assert resolved == list(range(len(futures)))


async def test_a_cancelled_waiter_is_skipped() -> None:
    loop = asyncio.get_running_loop()
    # Resolving a cancelled future raises InvalidStateError inside the waker's callback, where
    # only the loop's exception handler sees it: record what reaches it.
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        waker = Waker()
        gone, waiting, after = loop.create_future(), loop.create_future(), loop.create_future()
        gone.cancel()
        waker.wake(gone)
        waker.wake(waiting)
        await asyncio.wait_for(waiting, 10)
        # The waker is not stuck on the cancelled future either: a later wake still works.
        waker.wake(after)
        await asyncio.wait_for(after, 10)
    finally:
        loop.set_exception_handler(None)
    assert errors == []
    assert waiting.result() is None and after.result() is None


async def test_many_streams_get_every_event_in_order_across_batches(group: str) -> None:
    streams = [
        aiter(EventSourceResponse(subscribe(group), ping_interval=30))
        for _ in range(WAKE_BATCH * 3)
    ]
    assert [await anext(s) for s in streams] == [OPENING] * len(streams)
    assert get_hub().groups()[group] == len(streams)

    async def read(stream: AsyncIterator[bytes], count: int) -> bytes:
        received = b""
        while received.count(b"\n\n") < count:
            received += await anext(stream)
        return received

    readers = [asyncio.ensure_future(read(s, 5)) for s in streams]
    ids = [await publish(group, n) for n in range(5)]
    bodies = await asyncio.wait_for(asyncio.gather(*readers), 20)
    expected = b"".join(f"data: {n}\nid: {i}\n\n".encode() for n, i in enumerate(ids))
    assert set(bodies) == {expected}
    for stream in streams:
        await stream.aclose()  # type: ignore[attr-defined]
    assert group not in get_hub().groups()


async def test_the_steady_state_of_a_stream_reuses_one_awaitable(group: str) -> None:
    # No coroutine or async-generator step object per event: anext() hands back the same small
    # awaitable every time, which yields the subscription's own future to the task.
    stream = aiter(EventSourceResponse(subscribe(group), ping_interval=30))
    assert await anext(stream) == OPENING
    step = anext(stream)
    assert anext(stream) is step
    pending = asyncio.ensure_future(step)
    await publish(group, "x")
    assert (await asyncio.wait_for(pending, 5)).startswith(b'data: "x"\n')
    assert anext(stream) is step
    await stream.aclose()  # type: ignore[attr-defined]


def test_the_stream_has_no_iter_so_django_takes_it_for_async() -> None:
    # Django decides is_async from iter(content): an __iter__ anywhere on the body would make
    # the response a sync stream for every middleware and for the test client.
    response = EventSourceResponse(subscribe("test-wake.sync"))
    assert not hasattr(response._event_stream, "__iter__")
    assert response.is_async
