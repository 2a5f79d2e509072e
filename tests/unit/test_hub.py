"""The per-process hub, publish and subscribe, in one process on the in-memory channel layer."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import itertools
import threading
import uuid
import weakref
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from channels_redis.core import RedisChannelLayer  # type: ignore[import-untyped]

from django_sse import EventSourceResponse, ServerSentEvent, conf, publish, publish_sync, subscribe
from django_sse.live import membership
from django_sse.live.delivery import EventKey, PublishedEvent
from django_sse.live.groups import layer_group
from django_sse.live.hub import Hub, current_layer, get_hub
from django_sse.live.subscription import Subscription
from django_sse.stream import OPENING
from tests.support.sse_parser import parse
from tests.support.waiting import until_async as until

_names = itertools.count()


@pytest.fixture
def group() -> str:
    """A group no other test uses: the in-memory layer lives as long as the process."""
    return f"test-hub.g{next(_names)}"


async def collect(subscription: Subscription, count: int) -> list[bytes]:
    received: list[bytes] = []
    async with asyncio.timeout(20):  # a missing event fails the test instead of hanging it
        async for chunk in subscription:
            received.append(chunk)
            if len(received) == count:
                break
    return received


def layer_members(group: str) -> int:
    return len(current_layer().groups.get(layer_group(group), {}))


async def test_a_thousand_subscribers_get_every_event_through_one_channel(group: str) -> None:
    subscriptions = [subscribe(group) for _ in range(1000)]
    # Join them all before publishing, as 1,000 open streams would be.
    await asyncio.gather(*(s.wait(0.001) for s in subscriptions))
    hub = get_hub()
    assert hub.groups()[group] == 1000
    assert hub.channels == 1
    assert layer_members(group) == 1  # one layer channel for the whole process

    readers = [asyncio.create_task(collect(s, 200)) for s in subscriptions]
    received_before = hub.received
    ids = [await publish(group, {"n": n}) for n in range(200)]
    results = await asyncio.wait_for(asyncio.gather(*readers), 30)

    assert hub.received - received_before == 200  # one layer message per event, not per subscriber
    expected = [f'data: {{"n":{n}}}\nid: {ids[n]}\n\n'.encode() for n in range(200)]
    assert all(result == expected for result in results)
    # Encoded once: every subscriber got the very same bytes object.
    assert len({id(result[7]) for result in results}) == 1

    for subscription in subscriptions:
        await subscription.close()
    await until(lambda: layer_members(group) == 0)
    assert group not in hub.groups()
    assert hub.channels == 0  # nobody left: the channel and its receive task are gone


async def test_ids_grow_monotonically_per_group(group: str) -> None:
    other = group + "x"
    ids = [await publish(group, n) for n in range(3)] + [await publish(other, 9)]
    keys = [tuple(int(part) for part in i.split("-")) for i in ids[:3]]
    assert keys == sorted(keys) and len(set(keys)) == 3
    assert ids[3].endswith("-1")  # a sequence of its own


async def test_reconnect_gets_exactly_the_missed_events(group: str) -> None:
    first = subscribe(group)
    await first.wait(0.001)
    ids = [await publish(group, n) for n in range(5)]
    seen = await collect(first, 2)
    await first.close()
    assert seen[-1].endswith(f"id: {ids[1]}\n\n".encode())

    missed = [await publish(group, n) for n in range(5, 8)]
    again = subscribe(group, last_event_id=ids[1])
    reader = asyncio.create_task(collect(again, 7))
    live = [await publish(group, n) for n in range(8, 9)]
    events = parse(b"".join(await asyncio.wait_for(reader, 5))).events
    assert [e.last_event_id for e in events] == ids[2:] + missed + live
    assert [e.data for e in events] == [str(n) for n in range(2, 9)]
    await again.close()


async def test_no_gap_and_no_duplicate_while_publishing_during_the_join(group: str) -> None:
    # A publisher runs while subscribers join and replay: each must see every event after its
    # last id exactly once, whichever of replay or live delivered it.
    base = await publish(group, -1)
    stop = asyncio.Event()
    assert conf.get("REPLAY_WINDOW") > 600

    async def publisher() -> None:
        # Fewer events than REPLAY_WINDOW, so that every subscriber can replay from ``base``.
        for n in range(600):
            if stop.is_set():
                return
            await publish(group, n)
            await asyncio.sleep(0)  # a loop turn between events: subscribers join in between

    task = asyncio.create_task(publisher())
    subscriptions = []
    for _ in range(20):
        subscription = subscribe(group, last_event_id=base)
        await subscription.wait(0.001)  # joins the hub and replays, mid-burst
        subscriptions.append(subscription)
    stop.set()
    await task
    final = await publish(group, "end")
    for subscription in subscriptions:
        chunks: list[bytes] = []
        async with asyncio.timeout(5):
            async for chunk in subscription:
                chunks.append(chunk)
                if chunk.endswith(f"id: {final}\n\n".encode()):
                    break
        data = [e.data for e in parse(b"".join(chunks)).events]
        assert data[-1] == '"end"'
        numbers = [int(d) for d in data[:-1]]
        assert numbers == list(range(len(numbers)))  # no gap, no duplicate, in order
        await subscription.close()


async def test_an_id_outside_the_window_gets_a_reset_event(group: str) -> None:
    newest = await publish(group, 1)
    subscription = subscribe(group, last_event_id="12-34")
    [chunk] = await collect(subscription, 1)
    [event] = parse(chunk).events
    assert event.type == "reset"
    assert event.last_event_id == newest  # the client resumes after the reset from here
    assert '"reason":"expired"' in event.data  # an epoch older than the group's
    await subscription.close()


async def test_a_subscriber_that_falls_behind_is_closed_and_never_slows_the_others(
    group: str,
) -> None:
    slow = subscribe(group, queue_size=5)
    fast = subscribe(group, queue_size=5)
    await slow.wait(0.001)
    await fast.wait(0.001)
    reader = asyncio.create_task(collect(fast, 20))
    ids = [await publish(group, n) for n in range(20)]
    assert len(await asyncio.wait_for(reader, 5)) == 20
    assert slow.finished and slow.lagged and not slow.has_data
    assert [chunk async for chunk in slow] == []  # its stream ends; the client reconnects
    assert get_hub().groups()[group] == 1
    # ... and resumes by id: here from the start, so it replays all twenty.
    again = subscribe(group, last_event_id=ids[0])
    assert len(await collect(again, 19)) == 19
    for subscription in (fast, again):
        await subscription.close()


async def test_filter_sees_decoded_data_and_keeps_only_matching_events(group: str) -> None:
    mine = subscribe(group, filter=lambda event: event.data["owner"] == "ann")
    await mine.wait(0.001)
    for n, owner in enumerate(["bob", "ann", "bob", "ann"]):
        await publish(group, ServerSentEvent(event="updated", data={"owner": owner, "n": n}))
    events = parse(b"".join(await collect(mine, 2))).events
    assert [(e.type, e.data) for e in events] == [
        ("updated", '{"owner":"ann","n":1}'),
        ("updated", '{"owner":"ann","n":3}'),
    ]
    await mine.close()


async def test_publish_sync_from_a_worker_thread(group: str) -> None:
    subscription = subscribe(group)
    await subscription.wait(0.001)
    event_id = await sync_to_async(publish_sync)(group, ServerSentEvent(raw_data="a\nb"))
    [chunk] = await collect(subscription, 1)
    assert chunk == f"data: a\ndata: b\nid: {event_id}\n\n".encode()
    await subscription.close()


async def test_event_source_response_drives_the_subscription_itself(group: str) -> None:
    subscription = subscribe(group)
    response = EventSourceResponse(subscription, ping_interval=5)
    assert response._source is subscription  # no pump task in between
    stream: AsyncIterator[bytes] = aiter(response)
    assert await anext(stream) == OPENING
    assert get_hub().groups().get(group) == 1  # ": open" is sent once subscribed
    step = asyncio.ensure_future(anext(stream))  # an awaitable, not a coroutine
    event_id = await publish(group, "hi")
    assert await asyncio.wait_for(step, 5) == f'data: "hi"\nid: {event_id}\n\n'.encode()
    await stream.aclose()  # type: ignore[attr-defined]
    assert group not in get_hub().groups()


def test_invalid_group_names_are_refused_at_once() -> None:
    for name in ["", "a b", "items/1", "é", "x" * 99]:
        with pytest.raises(ValueError):
            subscribe(name)
    with pytest.raises(ValueError, match="too long"):
        layer_group("x" * (99 - len("django_sse.") + 1))
    assert layer_group("x" * (99 - len("django_sse."))) == "django_sse." + "x" * 88


async def test_publish_refuses_an_event_with_an_id(group: str) -> None:
    with pytest.raises(ValueError, match="assigns event ids"):
        await publish(group, ServerSentEvent(data=1, id="7"))


async def test_priming_a_subscription_does_not_wait_for_a_first_event(group: str) -> None:
    response = EventSourceResponse(subscribe(group))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await response.prime(wait=10)  # a generator would be waited on for up to 10 s
    assert loop.time() - started < 5
    assert get_hub().groups()[group] == 1  # joined: the stream misses nothing from here on
    await response._source.close()  # type: ignore[union-attr]


async def test_publish_sync_from_a_thread_with_no_loop_of_ours(group: str) -> None:
    # A plain thread (a scheduler, a thread started by a view): publish_sync runs a loop of its
    # own there, and the in-memory layer must still wake this loop's hub.
    subscription = subscribe(group)
    await subscription.wait(0.001)
    thread = threading.Thread(target=publish_sync, args=(group, "from a thread"))
    thread.start()
    [chunk] = await collect(subscription, 1)
    assert chunk.startswith(b'data: "from a thread"\n')
    await asyncio.to_thread(thread.join, 5)
    await subscription.close()


async def test_a_page_rendered_at_the_latest_id_misses_nothing_before_it_connects(
    group: str,
) -> None:
    from django_sse import latest_event_id

    await publish(group, "before the page")
    rendered_at = await latest_event_id(group)  # the view reads this, then renders its state
    between = [await publish(group, n) for n in range(3)]  # before the browser connects
    subscription = subscribe(group, last_event_id=rendered_at)
    events = parse(b"".join(await collect(subscription, 3))).events
    assert [e.last_event_id for e in events] == between
    await subscription.close()


async def test_a_subscription_stream_pings_while_idle_and_delivers_between_pings(
    group: str,
) -> None:
    from django_sse.encoding import PING

    stream = EventSourceResponse(subscribe(group), ping_interval=0.05).__aiter__()
    assert await anext(stream) == OPENING
    assert await asyncio.wait_for(anext(stream), 5) == PING  # idle: a ping, then another
    assert await asyncio.wait_for(anext(stream), 5) == PING
    published = [await publish(group, n) for n in range(3)]
    received = b""
    while received.count(b"data:") < 3:
        received += await asyncio.wait_for(anext(stream), 5)
    events = parse(received).events
    assert [e.last_event_id for e in events] == published
    assert await asyncio.wait_for(anext(stream), 5) == PING  # idle again
    await stream.aclose()  # type: ignore[attr-defined]


async def test_leaving_and_rejoining_at_once_keeps_the_group_live(group: str) -> None:
    # A page reload: the old subscriber leaves and a new one joins within a few loop turns.
    old = subscribe(group)
    await old.open()
    await old.close()
    new = subscribe(group)
    await new.open()
    for _ in range(20):
        await asyncio.sleep(0)  # let the old subscriber's background discard run
    assert layer_members(group) == 1
    event_id = await publish(group, "after the reload")
    (chunk,) = await collect(new, 1)
    assert chunk.endswith(f"id: {event_id}\n\n".encode())
    await new.close()


async def test_a_client_gone_while_priming_a_subscription_leaves_the_group(group: str) -> None:
    response = EventSourceResponse(subscribe(group))
    priming = asyncio.create_task(response.prime())
    await asyncio.sleep(0)  # one turn: the priming task starts, the scenario is its cancellation
    priming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await priming
    await until(lambda: group not in get_hub().groups() and layer_members(group) == 0)


async def test_a_subscription_wrapped_in_a_generator_is_released_on_disconnect(group: str) -> None:
    async def events() -> AsyncIterator[object]:
        yield ServerSentEvent(comment="hello")
        async with subscribe(group) as subscription:
            async for chunk in subscription:
                yield chunk

    stream = EventSourceResponse(events()).__aiter__()
    received = b""
    while b"hello" not in received:
        received += await asyncio.wait_for(anext(stream), 5)
    # Joined in the layer too (the hub lists the group as soon as the join starts).
    await until(lambda: group in get_hub().groups() and layer_members(group) == 1)
    await publish(group, 1)
    while b"data: 1" not in received:
        received += await asyncio.wait_for(anext(stream), 5)
    await stream.aclose()  # type: ignore[attr-defined]  # the client went away
    await until(lambda: group not in get_hub().groups() and layer_members(group) == 0)


# --- formerly test_hub_renewal.py ----------------------------------------------------------------
# The hub renews its channel-layer memberships without holding up joins.
#
# Layers forget a membership after ``group_expiry``, so the hub re-adds its channel to every group
# it holds, periodically. That pass once held the hub's lock from the first group to the last:
# with 20,000 groups on Redis it took 13.6 s, and a page that joined a new group meanwhile waited
# 11 s for its first event. Here the pass runs against a real ``RedisChannelLayer``, and a join
# made while it runs must be done before the pass is.


GROUPS = 1000


class RecordingLayer(RedisChannelLayer):  # type: ignore[misc]
    """The real layer, recording every membership it is asked to add."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.adds: list[str] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.adds.append(group)
        await super().group_add(group, channel)


class Member:
    def push(self, delivery: PublishedEvent) -> bool:
        return True

    def end(self, error: Exception | None = None) -> None:
        pass

    def reset(self, reason: str, position: EventKey) -> bool:
        return True


FAST = 0.001


async def test_a_join_completes_while_the_renewal_of_many_groups_runs(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(membership, "MAX_RENEW_INTERVAL", 0.5)
    layer = RecordingLayer(hosts=[redis_url], prefix="t" + uuid.uuid4().hex[:8])
    hub = Hub(layer)
    members = [(f"renew.g{n}", Member()) for n in range(GROUPS)]
    late = ("renew.new", Member())
    try:
        await asyncio.gather(*(hub.join(group, member) for group, member in members))
        # A pass may have begun while they joined: wait for the next one to begin.
        await until(lambda: hub.renewals >= 1, interval=FAST)
        passes, base = hub.renewals, len(layer.adds)
        await until(lambda: len(layer.adds) > base, interval=FAST)
        renewed_before_join = len(layer.adds) - base
        await hub.join(*late)
        renewed_at_join = len(layer.adds) - base - 1  # the new group's own add not counted
        await until(lambda: hub.renewals > passes, interval=FAST)
        print(
            f"\n{GROUPS} groups: a join made {renewed_before_join} renewals into the pass was "
            f"done {renewed_at_join} renewals into it"
        )
        # Done while the pass was still running, not after it (was: after all GROUPS renewals).
        assert renewed_at_join < GROUPS
        assert hub.groups()["renew.new"] == 1
    finally:
        for group, member in [*members, late]:
            hub.leave(group, member)
        await until(lambda: hub.stats()["tasks"] == 0, interval=FAST)
        await layer.flush()


# --- the hub's long-lived tasks and the requests that started them ---------------------------


class _RequestState:
    """Something a request keeps in a context variable (a user, a database connection)."""


_request_state: contextvars.ContextVar[_RequestState] = contextvars.ContextVar("request_state")


async def test_the_hubs_tasks_keep_nothing_of_the_request_that_started_them(group: str) -> None:
    # The first subscriber's join starts the receive and renewal tasks, which live as long as
    # the hub: they must not hold that request's context variables for the process's life.
    subscription = subscribe(group)

    async def first_request() -> weakref.ref[_RequestState]:
        state = _RequestState()
        _request_state.set(state)
        await subscription.open()
        return weakref.ref(state)

    kept = await asyncio.get_running_loop().create_task(first_request())
    try:
        assert get_hub().stats()["tasks"] >= 1  # the receive task runs on
        # The finished request task goes with the loop's next turn; nothing else may keep it.
        await until(lambda: gc.collect() >= 0 and kept() is None)
    finally:
        await subscription.close()
