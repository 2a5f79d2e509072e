"""Presence shared through Redis, seen from sync code: no client left behind per event loop."""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
import weakref
from collections.abc import Iterator

import pytest
from django.test import override_settings
from redis import Redis as SyncRedis

from django_sse.live.presence import Presence, Tracker, presence, presence_sync, tracker
from django_sse.live.state import live_state
from tests.support.waiting import until


@pytest.fixture
def shared_presence(redis_url: str) -> Iterator[Tracker]:
    prefix = "test-presence-" + uuid.uuid4().hex[:8]
    options = {
        "PRESENCE": True,
        "REPLAY_BACKEND": "redis",
        "REDIS_URL": redis_url,
        "KEY_PREFIX": prefix,
    }
    with override_settings(DJANGO_SSE=options):
        live_state.reset()
        try:
            found = tracker()
            assert isinstance(found, Tracker) and found.shared is not None
            yield found
        finally:
            live_state.reset()


def test_a_loop_per_call_leaves_no_redis_client_behind_and_its_close_untouched(
    redis_url: str, shared_presence: Tracker
) -> None:
    # presence_sync in a shell or a sync view: async_to_sync outside a loop (or asyncio.run)
    # runs a new loop per call. Each call's client must be closed with its loop, without
    # replacing the loop's close().
    redis = SyncRedis.from_url(redis_url)
    database = redis.connection_pool.connection_kwargs.get("db", 0)
    mine = redis.client_id()

    def connections() -> int:
        # What the server sees of this database's clients, this counting connection aside.
        return sum(
            1 for c in redis.client_list() if int(c["db"]) == database and int(c["id"]) != mine
        )

    loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
    patched: list[asyncio.AbstractEventLoop] = []

    async def read() -> Presence:
        loop = asyncio.get_running_loop()
        loops.add(loop)
        found = await presence("g")
        if "close" in vars(loop):
            patched.append(loop)
        return found

    assert asyncio.run(read()) == Presence(0)  # the first call may open what stays open
    before_fds, before_connections = len(os.listdir("/proc/self/fd")), connections()
    for _ in range(15):
        assert asyncio.run(read()) == Presence(0)
        assert presence_sync("g") == Presence(0)  # async_to_sync: its own loop per call
    gc.collect()
    assert patched == []  # presence never patches loop.close
    assert len(os.listdir("/proc/self/fd")) <= before_fds + 2  # a client per call: 30 sockets
    # The server drops a closed connection on its own time: wait for it, never for the clock.
    until(lambda: connections() <= before_connections + 1)
    assert len(loops) == 0  # nothing of presence keeps a finished loop (and its client) alive
    assert shared_presence.shared is not None
    assert len(shared_presence.shared._clients) == 0
