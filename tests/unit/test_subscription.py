"""The keep-alive timer of a subscription: no ping while events flow, one once it is idle."""

from __future__ import annotations

import asyncio
import gc
import itertools
import weakref

from django_sse.live.delivery import PublishedEvent
from django_sse.live.subscription import Subscription

INTERVAL = 0.25
_names = itertools.count()


async def live_subscription() -> Subscription:
    # A group nobody publishes to: these tests drive push() themselves.
    subscription = Subscription(f"test-ping.g{next(_names)}")
    await subscription.open()
    return subscription


async def test_events_closer_than_the_interval_never_let_the_timer_fire() -> None:
    subscription = await live_subscription()
    loop = asyncio.get_running_loop()

    async def feed() -> None:
        # Eight events 0.05 s apart: 0.4 s in all, so the timer armed at the first wait comes
        # due and must move itself on instead of firing.
        for n in range(1, 9):
            await asyncio.sleep(0.05)  # the pace under test (events closer than INTERVAL)
            subscription.push(
                PublishedEvent(group=subscription.group, id=f"1-{n}", wire=b"data: x\n\n")
            )

    feeder = asyncio.create_task(feed())
    taken = 0
    early_timeouts: list[float] = []
    while not feeder.done() or subscription.has_data:
        waited = loop.time()
        await subscription.wait(INTERVAL)
        if subscription.has_data:
            subscription.take()
            taken += 1
        elif not feeder.done() and loop.time() - waited < INTERVAL - 0.001:
            # Ended empty before the stream was idle for the interval: the timer fired at a
            # deadline the events had moved on. (On a loaded machine the feeder can be late;
            # a wait that then ends after a whole idle interval is right.)
            early_timeouts.append(loop.time() - waited)
    assert early_timeouts == []
    assert taken >= 1
    await subscription.close()


async def test_an_idle_wait_ends_after_the_interval_and_close_disarms_the_timer() -> None:
    subscription = await live_subscription()
    subscription.push(PublishedEvent(group=subscription.group, id="1-1", wire=b"data: x\n\n"))
    await subscription.wait(0.2)
    subscription.take()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(subscription.wait(0.2), 30)  # it ends by itself
    assert not subscription.has_data
    assert loop.time() - started >= 0.19  # and not before the interval
    waiting = subscription.waiter(5)  # arms the ping timer, five seconds out
    assert waiting is not None and not waiting.done()
    await subscription.close()
    assert waiting.done()  # close() wakes the waiting stream at once
    # Nothing keeps a closed subscription alive: an armed timer would (the loop holds it).
    closed = weakref.ref(subscription)
    del subscription
    gc.collect()
    assert closed() is None
