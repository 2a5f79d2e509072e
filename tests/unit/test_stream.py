"""ResponseBody: the body an EventSourceResponse streams, driven here without a server."""

from __future__ import annotations

import gc
import itertools
import weakref
from collections.abc import Iterator

import pytest

from django_sse.live.delivery import PublishedEvent
from django_sse.live.subscription import Subscription
from django_sse.stream import OPENING, ResponseBody

_names = itertools.count()


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_gc")
async def test_a_closed_body_and_its_subscription_are_freed_without_the_collector() -> None:
    # Thousands of streams end at once when a server restarts or a page reloads: each must go
    # when its last reference does, not wait for a collection that traces every live stream.
    subscription = Subscription(f"test-stream.g{next(_names)}")
    body = ResponseBody(subscription, ping_interval=5)
    steps = aiter(body)
    assert await anext(steps) == OPENING
    subscription.push(PublishedEvent(group=subscription.group, id="1-1", wire=b"data: x\n\n"))
    assert await anext(steps) == b"data: x\n\n"
    await body.aclose()
    freed_body, freed_subscription = weakref.ref(body), weakref.ref(subscription)
    del body, steps, subscription
    assert freed_body() is None
    assert freed_subscription() is None
