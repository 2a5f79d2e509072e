"""The keep-alive timer of a subscription: no ping while events flow, one once it is idle."""

from __future__ import annotations

import asyncio

from django_sse.delivery import Delivery
from django_sse.subscribe import Subscription


def live_subscription() -> Subscription:
    subscription = Subscription("bench")
    # Skip joining a hub: these tests drive push() themselves.
    subscription._set_up = True
    return subscription


async def test_events_closer_than_the_interval_never_let_the_timer_fire() -> None:
    subscription = live_subscription()

    async def feed() -> None:
        for n in range(1, 9):
            await asyncio.sleep(0.05)
            subscription.push(Delivery(group="bench", id=f"1-{n}", wire=b"data: x\n\n"))

    feeder = asyncio.create_task(feed())
    timeouts = 0
    while not feeder.done() or subscription.has_data:
        await subscription.wait(0.25)
        if subscription.has_data:
            subscription.take()
        elif not feeder.done():
            timeouts += 1
    assert timeouts == 0
    await subscription.close()


async def test_an_idle_wait_ends_after_the_interval_and_close_disarms_the_timer() -> None:
    subscription = live_subscription()
    subscription.push(Delivery(group="bench", id="1-1", wire=b"data: x\n\n"))
    await subscription.wait(0.2)
    subscription.take()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await subscription.wait(0.2)
    assert not subscription.has_data
    assert 0.19 <= loop.time() - started < 1.0
    waiting = asyncio.create_task(subscription.wait(5))
    await asyncio.sleep(0.01)
    assert subscription._timer is not None
    await subscription.close()
    assert subscription._timer is None  # nothing keeps a closed subscription alive
    await asyncio.wait_for(waiting, 1)
