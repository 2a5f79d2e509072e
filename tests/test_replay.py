"""The replay log: ids, windows, expiry and the reset answers, in memory and in Redis Streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from django_sse.delivery import parse_id
from django_sse.replay import MemoryLog, NullLog, Record, RedisLog


def record(n: int) -> Record:
    return Record(body=f"data: {n}\n".encode(), payload=str(n).encode())


async def test_memory_ids_are_monotonic_and_replay_is_exact() -> None:
    log = MemoryLog(window=10, ttl=60)
    ids = [(await log.append("g", record(n))).id for n in range(5)]
    keys = [parse_id(i) for i in ids]
    assert keys == sorted(keys)  # type: ignore[type-var]
    replay = await log.since("g", ids[1])
    assert replay.reset is None
    assert [d.id for d in replay.deliveries] == ids[2:]
    assert [d.data for d in replay.deliveries] == [2, 3, 4]
    assert replay.deliveries[0].wire == f"data: 2\nid: {ids[2]}\n\n".encode()
    assert (await log.since("g", ids[-1])).deliveries == []


async def test_memory_window_and_unknown_ids_answer_reset() -> None:
    log = MemoryLog(window=3, ttl=60)
    ids = [(await log.append("g", record(n))).id for n in range(6)]
    assert [d.id for d in (await log.since("g", ids[2])).deliveries] == ids[3:]
    expired = await log.since("g", ids[1])
    assert (expired.reset, expired.newest_id) == ("expired", ids[-1])
    for foreign in ["nonsense", "1-1", f"{log.epoch}-99"]:
        assert (await log.since("g", foreign)).reset == "unknown"


async def test_memory_entries_expire_after_the_ttl() -> None:
    log = MemoryLog(window=10, ttl=0.05)
    first = (await log.append("g", record(0))).id
    await log.append("g", record(1))
    await asyncio.sleep(0.1)
    assert (await log.since("g", first)).reset == "expired"


async def test_replay_turned_off_always_resets() -> None:
    log = NullLog()
    event_id = (await log.append("g", record(0))).id
    replay = await log.since("g", event_id)
    # No id either: a reset carrying one would be sent back, reset again, and reload forever.
    assert (replay.reset, replay.newest_id) == ("disabled", None)


@pytest.fixture
async def redis_log(redis_url: str) -> AsyncIterator[RedisLog]:
    log = RedisLog(redis_url, window=5, ttl=60, prefix="test-replay-" + uuid.uuid4().hex[:8])
    yield log
    await log._client().delete(log.key("g"))
    await log._client().aclose()


async def test_redis_stream_ids_are_the_event_ids(redis_log: RedisLog) -> None:
    deliveries = [await redis_log.append("g", record(n)) for n in range(4)]
    ids = [d.id for d in deliveries]
    assert all(parse_id(i) is not None for i in ids)
    assert len(set(ids)) == 4
    replay = await redis_log.since("g", ids[0])
    assert [d.id for d in replay.deliveries] == ids[1:]  # exclusive start
    assert [d.wire for d in replay.deliveries] == [d.wire for d in deliveries[1:]]
    assert [d.data for d in replay.deliveries] == [1, 2, 3]
    assert (await redis_log.since("g", ids[-1])).deliveries == []


async def test_redis_reset_past_the_window(redis_log: RedisLog) -> None:
    ids = [(await redis_log.append("g", record(n))).id for n in range(300)]
    # MAXLEN ~ trims whole blocks: the oldest ids are gone, the newest are kept.
    assert (await redis_log.since("g", ids[0])).reset == "expired"
    assert [d.id for d in (await redis_log.since("g", ids[-3])).deliveries] == ids[-2:]
    assert (await redis_log.since("g", "garbage")).reset == "unknown"
    assert (await redis_log.since("g", "99999999999999-0")).reset == "unknown"
    assert (await redis_log.since("other", ids[-1])).reset == "expired"


async def test_newest_id_resumes_exactly_after_it_in_memory() -> None:
    log = MemoryLog(window=10, ttl=60)
    empty = await log.newest("g")
    first = (await log.append("g", record(0))).id
    # A page rendered before any event resumes from "<epoch>-0": the first event is replayed.
    assert [d.id for d in (await log.since("g", empty or "")).deliveries] == [first]
    assert await log.newest("g") == first
    later = [(await log.append("g", record(n))).id for n in (1, 2)]
    assert [d.id for d in (await log.since("g", first)).deliveries] == later


async def test_newest_id_in_redis(redis_log: RedisLog) -> None:
    assert await redis_log.newest("g") is None
    first = (await redis_log.append("g", record(0))).id
    assert await redis_log.newest("g") == first
    later = [(await redis_log.append("g", record(n))).id for n in (1, 2)]
    assert await redis_log.newest("g") == later[-1]
    assert [d.id for d in (await redis_log.since("g", first)).deliveries] == later


async def test_replay_turned_off_offers_no_id_to_resume_from() -> None:
    log = NullLog()
    await log.append("g", record(0))
    assert await log.newest("g") is None


def test_publish_sync_without_a_loop_leaves_no_redis_connection_behind(redis_url: str) -> None:
    # A shell or task worker: publish_sync calls share one publishing loop and its client.
    import os

    from django.test import override_settings

    from django_sse import publish_sync
    from django_sse.replay import get_log, reset_logs

    prefix = "test-leak-" + uuid.uuid4().hex[:8]
    options = {"REPLAY_BACKEND": "redis", "REDIS_URL": redis_url, "KEY_PREFIX": prefix}
    with override_settings(DJANGO_SSE=options):
        reset_logs()
        try:
            publish_sync("g", 0)
            before = len(os.listdir("/proc/self/fd"))
            for n in range(30):
                publish_sync("g", n)
            log = get_log()
            assert isinstance(log, RedisLog)
            assert len(log._clients) == 1  # the publishing loop's
            assert len(os.listdir("/proc/self/fd")) <= before + 2
            asyncio.run(_delete(log, "g"))
        finally:
            reset_logs()


async def _delete(log: RedisLog, group: str) -> None:
    await log._client().delete(log.key(group))


def test_ids_beyond_64_bits_are_not_ids() -> None:
    assert parse_id("18446744073709551615-0") == (2**64 - 1, 0)
    assert parse_id("18446744073709551616-0") is None  # XRANGE would fail on it
    assert parse_id("1-18446744073709551616") is None


async def test_memory_log_forgets_expired_groups_that_are_never_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import django_sse.replay

    monkeypatch.setattr(django_sse.replay, "SWEEP_EVERY", 5)
    log = MemoryLog(window=10, ttl=0.05)
    old = [(await log.append(f"items.item.{pk}", record(pk))).id for pk in range(4)]
    await asyncio.sleep(0.1)
    await log.append("items.item.99", record(99))  # the fifth append sweeps
    assert list(log._rings) == ["items.item.99"]
    # The group's newest id still resumes (nothing came after it), an older one gets a reset,
    # and ids never repeat.
    assert (await log.since("items.item.0", old[0])).reset is None
    assert (await log.since("items.item.0", f"{log.epoch}-0")).reset == "expired"
    assert (await log.append("items.item.0", record(0))).id != old[0]
