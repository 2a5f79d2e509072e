"""The hub's ordering of a group's live events, and the subscription's paged replay, in process.

The hub is fed channel-layer messages out of order, with gaps and duplicates, as concurrent
publishers and an at-most-once layer produce them; what its subscribers see must be the log's
order, with every event once, or an explicit reset. The real-process versions of these cases
are in test_concurrent_publishers.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_sse import publish, subscribe
from django_sse.live.catchup import FIRST_PAGE_SIZE
from django_sse.live.delivery import EventKey, PublishedEvent, format_id, parse_id
from django_sse.live.hub import Hub, current_layer
from django_sse.live.publish import make_record
from django_sse.live.replay import PAGE_SIZE, get_log
from django_sse.live.state import live_state
from django_sse.live.tokens import seal, unseal
from django_sse.stream import RETRY_AFTER_FAILURE_MS, retry_after_failure
from tests.support.sse_parser import parse
from tests.support.waiting import until_async as until

_names = itertools.count()


@pytest.fixture
def group() -> str:
    return f"test-order.g{next(_names)}"


@pytest.fixture(autouse=True)
def fresh_logs() -> Iterator[None]:
    live_state.reset()
    yield
    live_state.reset()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def push(self, delivery: PublishedEvent) -> bool:
        self.seen.append(delivery.position[1])
        return True

    def end(self, error: Exception | None = None) -> None:
        self.seen.append(("end", error))

    def reset(self, reason: str, position: EventKey) -> bool:
        self.seen.append((reason, position[1]))
        return True


async def logged(group: str, count: int) -> list[PublishedEvent]:
    """Events written to the log whose live sends are left to the test."""
    return [await get_log().append(group, make_record(n)) for n in range(count)]


async def test_early_events_are_held_and_duplicates_dropped(group: str) -> None:
    hub = Hub(current_layer())
    recorder = Recorder()
    await hub.join(group, recorder)
    events = await logged(group, 6)
    for index in [1, 0, 0, 3, 2, 1, 4, 5, 5]:
        hub.dispatch(events[index])
    assert recorder.seen == [1, 2, 3, 4, 5, 6]
    assert hub.position(group) == events[-1].position
    hub.leave(group, recorder)


async def test_a_missing_event_is_read_from_the_log(group: str) -> None:
    hub = Hub(current_layer())
    recorder = Recorder()
    await hub.join(group, recorder)
    events = await logged(group, 5)
    for index in [0, 3, 4]:  # 2 and 3 never arrive live (dropped by the layer)
        hub.dispatch(events[index])
    assert recorder.seen == [1]
    await until(lambda: len(recorder.seen) == 5)
    assert recorder.seen == [1, 2, 3, 4, 5]
    hub.leave(group, recorder)


async def test_a_gap_the_log_cannot_fill_is_reported_never_skipped(group: str) -> None:
    with override_settings(DJANGO_SSE={"REPLAY_BACKEND": None}):
        hub = Hub(current_layer())
        recorder = Recorder()
        await hub.join(group, recorder)
        events = await logged(group, 4)
        for index in [0, 2, 3]:
            hub.dispatch(events[index])
        await until(lambda: len(recorder.seen) == 4)
        assert recorder.seen == [1, ("gap", 2), 3, 4]
        hub.leave(group, recorder)


async def test_events_of_another_process_memory_log_are_passed_through(group: str) -> None:
    hub = Hub(current_layer())
    recorder = Recorder()
    await hub.join(group, recorder)
    foreign = [
        PublishedEvent(group=group, id=f"7-{n}", wire=b"data: 1\nid: 7-%d\n\n" % n, origin="other")
        for n in (2, 1)
    ]
    for delivery in foreign:
        hub.dispatch(delivery)
    assert recorder.seen == [2, 1]  # cannot be read back: delivered as they come
    hub.leave(group, recorder)


async def take_all(subscription: Any, until_id: str, limit: float = 20) -> tuple[bytes, int]:
    """Drive a subscription as the response does; also the most events it ever held at once."""
    chunks: list[bytes] = []
    most = 0
    async with asyncio.timeout(limit):
        while not (chunks and chunks[-1].endswith(f"id: {until_id}\n\n".encode())):
            await subscription.wait(None)
            most = max(most, len(subscription._pending))
            if subscription.has_data:
                chunks.append(subscription.take())
            assert not subscription.finished, subscription.error
    return b"".join(chunks), most


async def test_replay_is_read_in_pages_as_the_response_takes_them(group: str) -> None:
    ids = [await publish(group, n) for n in range(1000)]
    epoch = parse_id(ids[0])[0]  # type: ignore[index]
    subscription = subscribe(group, last_event_id=f"{epoch}-0")
    await subscription.open()
    assert len(subscription._pending) == FIRST_PAGE_SIZE  # one page, not the window
    data, most = await take_all(subscription, ids[-1])
    assert most <= PAGE_SIZE
    assert [int(e.data) for e in parse(data).events] == list(range(1000))
    # ... then the live events, without a duplicate.
    live = await publish(group, "live")
    data, _ = await take_all(subscription, live)
    assert [e.data for e in parse(data).events] == ['"live"']
    await subscription.close()


async def test_a_filter_that_raises_skips_that_event_only_and_says_so_once(
    group: str, caplog: pytest.LogCaptureFixture
) -> None:
    def keep(delivery: PublishedEvent) -> bool:
        return bool(delivery.data["keep"])  # KeyError on events without the field

    first = await publish(group, {"keep": True, "n": 0})
    replayed = [await publish(group, item) for item in ({"n": 1}, {"keep": True, "n": 2})]
    subscription = subscribe(group, last_event_id=first, filter=keep)
    with caplog.at_level(logging.ERROR, "django_sse"):
        data, _ = await take_all(subscription, replayed[-1])
        assert [e.data for e in parse(data).events] == ['{"keep":true,"n":2}']
        await publish(group, {"n": 3})
        last = await publish(group, {"keep": True, "n": 4})
        data, _ = await take_all(subscription, last)
    assert [e.data for e in parse(data).events] == ['{"keep":true,"n":4}']
    assert len([r for r in caplog.records if "filter" in r.getMessage()]) == 1
    await subscription.close()


async def test_a_filtered_subscribers_reset_hides_the_groups_position(group: str) -> None:
    ids = [await publish(group, {"owner": "other", "n": n}) for n in range(40)]

    def mine(delivery: PublishedEvent) -> bool:
        return bool(delivery.data["owner"] == "me")

    subscription = subscribe(group, last_event_id="not-an-id", filter=mine)
    await subscription.open()
    [reset] = parse(subscription.take()).events
    assert reset.type == "reset"
    token = reset.last_event_id
    assert parse_id(token) is None and ids[-1] not in token and token.startswith("r")
    assert unseal(token) == parse_id(ids[-1])
    assert ids[-1] not in reset.data
    await subscription.close()
    # The token resumes exactly after the position it hides.
    own = await publish(group, {"owner": "me"})
    again = subscribe(group, last_event_id=token, filter=mine)
    data, _ = await take_all(again, own)
    assert [e.last_event_id for e in parse(data).events] == [own]
    await again.close()
    # An unfiltered subscriber sees every id anyway: its reset carries the plain one.
    plain = subscribe(group, last_event_id="not-an-id")
    await plain.open()
    assert parse(plain.take()).events[0].last_event_id == own
    await plain.close()


def test_tokens_cannot_be_forged_or_altered() -> None:
    token = seal((1796163548075123, 42))
    assert unseal(token) == (1796163548075123, 42)
    assert seal((1, 2)) != seal((1, 2))  # a random nonce: equal positions do not show
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert unseal(altered) is None
    assert unseal("r" + "A" * 50) is None
    assert unseal(format_id((1, 2))) is None


def test_the_retry_after_a_failure_is_spread() -> None:
    values = {int(retry_after_failure().split()[1]) for _ in range(200)}
    low, high = RETRY_AFTER_FAILURE_MS
    assert all(low <= value <= high for value in values)
    assert len(values) > 50
