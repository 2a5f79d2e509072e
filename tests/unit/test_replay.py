"""The replay log: gap-free ids, pages, windows, expiry and resets, in memory and in Redis."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import cast

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from django_sse.live.delivery import parse_id
from django_sse.live.publish import make_record
from django_sse.live.replay import MemoryLog, NullLog, Record, RedisLog, check_page


def record(n: int) -> Record:
    return make_record(n)


def key(event_id: str) -> tuple[int, int]:
    found = parse_id(event_id)
    assert found is not None
    return found


async def test_memory_ids_count_the_groups_events_without_gaps() -> None:
    log = MemoryLog(window=10, ttl=60)
    ids = [(await log.append("g", record(n))).id for n in range(5)]
    epoch = key(ids[0])[0]
    assert ids == [f"{epoch}-{n}" for n in range(1, 6)]
    other = (await log.append("h", record(0))).id
    assert key(other)[1] == 1 and key(other)[0] > epoch  # every group counts on its own
    page = await log.read("g", key(ids[1]))
    assert page.reset is None
    assert [d.id for d in page.deliveries] == ids[2:]
    assert [d.data for d in page.deliveries] == [2, 3, 4]
    assert page.deliveries[0].wire == f"data: 2\nid: {ids[2]}\n\n".encode()
    assert (await log.read("g", key(ids[-1]))).deliveries == []
    assert await log.position("g") == key(ids[-1])


async def test_memory_pages_are_bounded() -> None:
    log = MemoryLog(window=100, ttl=60)
    ids = [(await log.append("g", record(n))).id for n in range(25)]
    after = (key(ids[0])[0], 0)
    got: list[str] = []
    while True:
        page = await log.read("g", after, count=10)
        assert page.reset is None and len(page.deliveries) <= 10
        if not page.deliveries:
            break
        got += [d.id for d in page.deliveries]
        after = page.deliveries[-1].position
    assert got == ids


async def test_memory_window_and_unknown_ids_answer_reset() -> None:
    log = MemoryLog(window=3, ttl=60)
    ids = [(await log.append("g", record(n))).id for n in range(6)]
    assert [d.id for d in (await log.read("g", key(ids[2]))).deliveries] == ids[3:]
    assert (await log.read("g", key(ids[1]))).reset == "expired"
    epoch = key(ids[0])[0]
    assert (await log.read("g", (epoch, 99))).reset == "unknown"  # not yet published
    assert (await log.read("g", (epoch + 10**9, 1))).reset == "unknown"  # a later epoch
    assert (await log.read("g", (1, 1))).reset == "expired"  # an epoch the log forgot
    assert (await log.read("never", (epoch, 1))).reset == "expired"


async def test_memory_entries_expire_after_the_ttl() -> None:
    log = MemoryLog(window=10, ttl=0.05)
    first = (await log.append("g", record(0))).id
    await log.append("g", record(1))
    await asyncio.sleep(0.1)  # the scenario: twice the TTL passes (at least; never less)
    assert (await log.read("g", key(first))).reset == "expired"


async def test_replay_turned_off_always_resets() -> None:
    log = NullLog()
    event_id = (await log.append("g", record(0))).id
    assert (await log.read("g", key(event_id))).reset == "disabled"
    assert await log.newest("g") is None  # nothing can be resumed from
    assert await log.position("g") == key(event_id)  # but the hub can still order by it


async def test_newest_id_resumes_exactly_after_it_in_memory() -> None:
    log = MemoryLog(window=10, ttl=60)
    empty = await log.newest("g")
    assert empty is not None and empty.endswith("-0")
    first = (await log.append("g", record(0))).id
    # A page rendered before any event resumes from "<epoch>-0": the first event is replayed.
    assert [d.id for d in (await log.read("g", key(empty))).deliveries] == [first]
    assert await log.newest("g") == first


async def test_memory_log_frees_a_group_with_its_last_event_and_restarts_with_a_new_epoch() -> None:
    log = MemoryLog(window=10, ttl=0.05)
    old = [(await log.append(f"items.item.{pk}", record(pk))).id for pk in range(100)]
    await asyncio.sleep(0.1)  # the scenario: twice the TTL passes (at least; never less)
    await log.append("items.item.new", record(0))  # any append frees what expired
    assert list(log._groups) == ["items.item.new"]
    # A freed group's ids are never repeated: the next event starts a later epoch.
    again = (await log.append("items.item.0", record(0))).id
    assert key(again)[0] > key(old[0])[0] and key(again)[1] == 1
    assert (await log.read("items.item.0", key(old[0]))).reset == "expired"


def test_what_a_group_costs_in_the_memory_log() -> None:
    """Measured, not asserted tightly: printed for the README's figure."""
    import gc
    import tracemalloc

    log = MemoryLog(window=1000, ttl=60)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(10_000):
        asyncio.run(log.append(f"items.item.{n}", make_record({"id": n, "name": "x"})))
    per_group = (tracemalloc.get_traced_memory()[0] - before) / 10_000
    tracemalloc.stop()
    print(f"\nmemory log: {per_group:.0f} B per group holding one small event", file=sys.stderr)
    assert per_group < 1500


def test_the_page_check() -> None:
    assert check_page((5, 3), (5, 3), None) is None  # up to date
    assert check_page((5, 3), (5, 9), (5, 4)) is None  # continues
    assert check_page((5, 3), (5, 9), (5, 7)) == "expired"  # trimmed past it
    assert check_page((5, 3), (5, 9), None) == "expired"  # nothing left of what followed
    assert check_page((5, 10), (5, 9), None) == "unknown"
    assert check_page((4, 3), (5, 9), (5, 1)) == "expired"
    assert check_page((6, 3), (5, 9), None) == "unknown"
    assert check_page((5, 3), None, None) == "expired"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test's own, to look at (and damage) what the log stored."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_log(redis_url: str, redis: Redis) -> AsyncIterator[RedisLog]:
    log = RedisLog(redis_url, window=5, ttl=60, prefix="test-replay-" + uuid.uuid4().hex[:8])
    yield log
    keys = await redis.keys(log.prefix + ":*")
    if keys:
        await redis.delete(*keys)


async def entry_ids(redis: Redis, log: RedisLog, group: str = "g") -> list[str]:
    """The ids of the group's entries in its Redis Stream."""
    entries = cast("list[tuple[bytes, object]]", await redis.xrange(log.key(group)))
    return [entry_id.decode() for entry_id, _ in entries]


async def test_redis_ids_are_gap_free_and_are_the_stream_ids(
    redis_log: RedisLog, redis: Redis
) -> None:
    deliveries = [await redis_log.append("g", record(n)) for n in range(4)]
    ids = [d.id for d in deliveries]
    epoch = key(ids[0])[0]
    assert ids == [f"{epoch}-{n}" for n in range(1, 5)]
    assert await entry_ids(redis, redis_log) == ids
    page = await redis_log.read("g", key(ids[0]))
    assert [d.id for d in page.deliveries] == ids[1:]  # exclusive start
    assert [d.wire for d in page.deliveries] == [d.wire for d in deliveries[1:]]
    assert [d.data for d in page.deliveries] == [1, 2, 3]
    assert (await redis_log.read("g", key(ids[-1]))).deliveries == []
    assert await redis_log.position("g") == key(ids[-1])
    assert await redis_log.positions(["g", "none"]) == [key(ids[-1]), None]


async def test_concurrent_appends_get_consecutive_ids(redis_log: RedisLog) -> None:
    ids = await asyncio.gather(*(redis_log.append("g", record(n)) for n in range(200)))
    assert sorted(key(d.id)[1] for d in ids) == list(range(1, 201))


async def test_redis_reset_past_the_window_on_every_page(redis_log: RedisLog) -> None:
    ids = [(await redis_log.append("g", record(n))).id for n in range(300)]
    # MAXLEN ~ trims whole blocks: the oldest ids are gone, the newest are kept.
    assert (await redis_log.read("g", key(ids[0]))).reset == "expired"
    assert [d.id for d in (await redis_log.read("g", key(ids[-3]))).deliveries] == ids[-2:]
    epoch = key(ids[0])[0]
    assert (await redis_log.read("g", (epoch, 10**6))).reset == "unknown"
    assert (await redis_log.read("g", (epoch + 10**9, 0))).reset == "unknown"
    assert (await redis_log.read("other", key(ids[-1]))).reset == "expired"
    # A trim between two pages is caught by the next page, not skipped.
    first_page = await redis_log.read("g", key(ids[-3]), count=1)
    for n in range(300):
        await redis_log.append("g", record(n))
    assert (await redis_log.read("g", first_page.deliveries[-1].position)).reset == "expired"


async def test_a_forgotten_group_starts_a_new_epoch(redis_log: RedisLog, redis: Redis) -> None:
    old = (await redis_log.append("g", record(0))).id
    # What expiry does after REPLAY_TTL seconds without events.
    await redis.delete(redis_log.key("g"), redis_log.position_key("g"))
    new = (await redis_log.append("g", record(1))).id
    assert key(new)[0] > key(old)[0] and key(new)[1] == 1
    assert (await redis_log.read("g", key(old))).reset == "expired"
    # Only the counter lost (eviction): the old entries are not read as the new epoch's.
    await redis.delete(redis_log.position_key("g"))
    newer = (await redis_log.append("g", record(2))).id
    assert await entry_ids(redis, redis_log) == [newer]


async def test_both_keys_expire_after_the_ttl(redis_log: RedisLog, redis: Redis) -> None:
    await redis_log.append("g", record(0))
    for name in (redis_log.key("g"), redis_log.position_key("g")):
        assert 0 < await redis.ttl(name) <= 60


async def test_redis_stores_each_payload_once(redis_log: RedisLog, redis: Redis) -> None:
    big = "x" * 1_000_000
    delivery = await redis_log.append("g", make_record({"blob": big}))
    size = await redis.memory_usage(redis_log.key("g"))
    assert size is not None and size < 1.2 * 1_000_000, size  # before: 2.0 MB
    [replayed] = (await redis_log.read("g", (delivery.position[0], 0))).deliveries
    assert replayed.wire == delivery.wire and replayed.data == {"blob": big}


async def test_payloads_filters_read_are_those_published(redis_log: RedisLog) -> None:
    from django_sse import ServerSentEvent

    events = [
        ServerSentEvent(data={"a": 1}, event="e", comment="c", retry=5),
        ServerSentEvent(raw_data="one line"),
        ServerSentEvent(raw_data="two\r\nlines\rand\nmore"),
        ServerSentEvent(raw_data=""),
        ServerSentEvent(comment="no data"),
        ServerSentEvent(event="only-a-name"),
    ]
    published = [await redis_log.append("g", make_record(e)) for e in events]
    replayed = (await redis_log.read("g", (published[0].position[0], 0))).deliveries
    expected = [{"a": 1}, "one line", "two\r\nlines\rand\nmore", "", None, None]
    assert [d.data for d in published] == expected
    assert [d.data for d in replayed] == expected
    assert [d.wire for d in replayed] == [d.wire for d in published]
    assert [d.event for d in replayed] == ["e", None, None, None, None, "only-a-name"]


async def test_newest_id_in_redis(redis_log: RedisLog) -> None:
    empty = await redis_log.newest("g")
    assert empty is not None and empty.endswith("-0")
    first = (await redis_log.append("g", record(0))).id
    assert key(first) == (key(empty)[0], 1)  # the epoch the page saw: the event is replayed
    assert [d.id for d in (await redis_log.read("g", key(empty))).deliveries] == [first]
    assert await redis_log.newest("g") == first


def test_publish_sync_without_a_loop_leaves_no_redis_connection_behind(redis_url: str) -> None:
    # A shell or task worker: publish_sync calls share one publishing loop and its client.
    import os

    from django.test import override_settings

    from django_sse import publish_sync
    from django_sse.live.replay import get_log
    from django_sse.live.state import live_state

    prefix = "test-leak-" + uuid.uuid4().hex[:8]
    options = {"REPLAY_BACKEND": "redis", "REDIS_URL": redis_url, "KEY_PREFIX": prefix}
    with override_settings(DJANGO_SSE=options):
        live_state.reset()
        try:
            publish_sync("g", 0)
            before = len(os.listdir("/proc/self/fd"))
            for n in range(30):
                publish_sync("g", n)
            log = get_log()
            assert isinstance(log, RedisLog)
            assert len(log._connections) == 1  # the publishing loop's
            assert len(os.listdir("/proc/self/fd")) <= before + 2
            SyncRedis.from_url(redis_url).delete(log.key("g"), log.position_key("g"))
        finally:
            live_state.reset()


def test_a_loop_per_call_leaves_no_redis_client_behind_and_its_close_untouched(
    redis_url: str,
) -> None:
    # A shell's latest_event_id_sync: async_to_sync outside a loop (or asyncio.run) runs a new
    # loop per call. Each call's client must be closed with its loop, by the log, without
    # replacing the loop's close().
    import gc
    import os
    import weakref

    from asgiref.sync import async_to_sync

    prefix = "test-loops-" + uuid.uuid4().hex[:8]
    log = RedisLog(redis_url, window=10, ttl=60, prefix=prefix)
    loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
    patched: list[asyncio.AbstractEventLoop] = []

    async def newest() -> str | None:
        loop = asyncio.get_running_loop()
        loops.add(loop)
        found = await log.newest("g")
        if "close" in vars(loop):
            patched.append(loop)
        return found

    asyncio.run(newest())  # the first call may open what stays open (imports, the pool class)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(15):
        asyncio.run(newest())
        async_to_sync(newest)()
    gc.collect()
    assert patched == []  # the log never patches loop.close
    assert len(os.listdir("/proc/self/fd")) <= before + 2  # a client per call: 30 sockets
    assert len(loops) == 0  # nothing of the log keeps a finished loop (and its client) alive
    SyncRedis.from_url(redis_url).delete(log.key("g"), log.position_key("g"))


def test_ids_beyond_64_bits_are_not_ids() -> None:
    assert parse_id("18446744073709551615-0") == (2**64 - 1, 0)
    assert parse_id("18446744073709551616-0") is None  # XRANGE would fail on it
    assert parse_id("1-18446744073709551616") is None
