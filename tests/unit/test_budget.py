"""The per-process byte budget: which streams it ends, and when
(tests/scenarios/test_process_budget.py
shows it against a real Daphne with frozen clients)."""

from __future__ import annotations

import pytest
from django.test import AsyncClient, override_settings

from django_sse import publish, subscribe
from django_sse.live.budget import ByteBudget, process_budget
from django_sse.live.hub import get_hub
from django_sse.testing import read_events
from tests.support.client_responses import async_content


class Stream:
    def __init__(self) -> None:
        self.ended = False

    def end(self, error: Exception | None = None) -> None:
        self.ended = True


async def test_past_the_budget_the_streams_that_wrote_the_most_end() -> None:
    budget = ByteBudget(1000)
    big, middle, small = Stream(), Stream(), Stream()
    budget.spend(big, 600)
    budget.spend(small, 100)
    budget.spend(middle, 300)
    assert not any(s.ended for s in (big, middle, small))  # 1,000: not past it
    budget.spend(small, 1)
    # Down to nine tenths of the budget: the biggest writer alone gets it there.
    assert big.ended and not middle.ended and not small.ended
    assert budget.stats() == {"limit": 1000, "bytes": 401, "streams": 2, "ended": 1}
    budget.release(middle)  # a stream that ended by itself leaves with what it wrote
    assert budget.stats()["bytes"] == 101


async def test_no_budget_counts_nothing() -> None:
    budget = ByteBudget(None)
    stream = Stream()
    budget.spend(stream, 10**12)
    assert not stream.ended and budget.stats()["streams"] == 0


@override_settings(DJANGO_SSE={"PROCESS_MAX_BYTES": 2000, "SUBSCRIBER_MAX_BYTES": None})
async def test_a_subscription_counts_what_it_writes_and_ends_over_the_process_budget() -> None:
    budget = process_budget()
    others = budget.stats()["streams"]  # streams other tests left open, if any
    early, late = subscribe("test-budget.a"), subscribe("test-budget.a")
    await early.open()
    await publish("test-budget.a", "x" * 900)
    await early.wait(5)
    early.take()  # about 950 bytes
    await late.open()
    for _ in range(2):
        await publish("test-budget.a", "y" * 100)
        for subscription in (early, late):
            await subscription.wait(5)
            if subscription.has_data:
                subscription.take()
    await publish("test-budget.a", "z" * 900)
    await late.wait(5)
    late.take()  # past 2,000 in all: the early one, which wrote the most, ends
    assert early.finished and early.error is None
    assert not late.finished
    assert budget.stats()["streams"] == others + 1
    await late.close()
    await early.close()
    assert budget.stats()["streams"] == others


@pytest.mark.urls("tests.support.urls")
@pytest.mark.parametrize(
    ("url", "group"),
    [
        ("/test/live/open/test-budget-close", "x.test-budget-close"),
        ("/test/feeds/pair/test-budget-close", "fd.test-budget-close.a"),
    ],
)
async def test_a_stream_closed_through_its_streaming_content_leaves_the_budget(
    url: str, group: str
) -> None:
    # How docs/topics/testing.md closes a stream: the hub and the budget both let it go.
    budget = process_budget()
    before = budget.stats()["streams"]
    response = await AsyncClient().get(url)
    await publish(group, 1)
    assert len(await read_events(response, 1)) == 1
    assert budget.stats()["streams"] == before + 1
    await async_content(response).aclose()  # type: ignore[attr-defined]
    # Released by the time aclose() returns: a test that ends right after it (and closes its
    # event loop, with the hub of that loop) leaves nothing in the process-wide budget.
    assert budget.stats()["streams"] == before
    assert not get_hub().groups()
