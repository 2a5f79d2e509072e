"""Redis restarts mid-stream: the hub recovers by itself and clients miss nothing.

The test runs its own ``redis-server`` (tests/support/redis_server.py), with persistence: the replay
log is a Redis Stream, and a Redis that restarts without persistence comes back empty, so replay
across a restart needs persistence in production too.
Redis is killed with SIGKILL (a crash, not a clean shutdown) while a publisher keeps publishing
and five browser-like clients (reconnect after a retry delay with ``Last-Event-ID``) read.

What must hold:
- publishes while Redis is down fail with an error returned to the publisher, never silently;
- every publish that succeeded reaches every client, once, in order (live or replayed);
- the hub recovers without a server restart: streams continue and new subscribers can join.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.raw_client import Browser, all_received, stats
from tests.support.redis_server import RedisServer
from tests.support.waiting import until_async

pytestmark = pytest.mark.server

PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
CORE = "channels_redis.core.RedisChannelLayer"
CLIENTS = 5


class Publisher:
    """Publishes ``seq`` 0, 1, 2 ... through the server, one every ``interval`` seconds, and
    records which publishes succeeded and which raised (the view answers 503 then)."""

    def __init__(self, url: str, group: str, interval: float = 0.05) -> None:
        self.url = url
        self.group = group
        self.interval = interval
        self.ok: list[int] = []
        self.failed: dict[int, str] = {}
        self.seq = 0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=20) as client:
            while not self.stop.is_set():
                seq, self.seq = self.seq, self.seq + 1
                response = await client.get(
                    "/test/rel/publish", params={"group": self.group, "seq": seq}
                )
                if response.status_code == 200:
                    self.ok.append(seq)
                else:
                    self.failed[seq] = response.json()["error"]
                await asyncio.sleep(self.interval)  # the publishing rate, not a wait


async def scenario(url: str, redis: RedisServer) -> dict[str, object]:
    group = "restart"
    browsers = [Browser(url, f"/test/live/open/{group}", retry=0.3) for _ in range(CLIENTS)]
    for browser in browsers:
        await browser.open()
    publisher = Publisher(url, f"x.{group}")
    task = asyncio.get_running_loop().create_task(publisher.run())
    try:
        # Streaming before the outage: a few events acknowledged and received by everyone.
        await until_async(lambda: len(publisher.ok) > 5)
        await all_received(browsers, 5, limit=60)
        before = len(publisher.ok)
        redis.kill()
        # Down until publishing failed and every client was dropped and came back at least
        # once (after the 2 s the server tells clients to wait), told to retry again later.
        await until_async(
            lambda: publisher.failed and all(b.reconnects >= 1 for b in browsers), within=60
        )
        down = dict(publisher.failed)
        redis.start()
        # Up again until publishing works again: twenty acknowledged after the restart.
        await until_async(
            lambda: len([seq for seq in publisher.ok if seq > max(down)]) >= 20, within=60
        )
    finally:
        publisher.stop.set()
        await task
    # Every acknowledged publish reaches every client; failed ones may not (nothing to replay).
    last = publisher.ok[-1]
    await until_async(lambda: all(b.seqs and b.seqs[-1] >= last for b in browsers), within=60)
    # A new subscriber joins the recovered hub and gets a live event. It is also the fence for
    # late duplicates: each stream is in order, so a duplicate of an earlier event that is still
    # coming arrives before this one, and the checks in the test see it.
    late = Browser(url, f"/test/live/open/{group}")
    await late.open()
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        response = await client.get(
            "/test/rel/publish", params={"group": f"x.{group}", "seq": publisher.seq}
        )
        assert response.status_code == 200, response.text
    await all_received([late], 1)
    # The others get it too, live or, if a stale pooled connection of the layer failed once
    # more after the restart and dropped them again, by replay when they come back.
    await until_async(lambda: all(publisher.seq in b.seqs for b in browsers), within=60)
    state = stats(url)
    for browser in [*browsers, late]:
        await browser.close()
    return {
        "browsers": browsers,
        "publisher": publisher,
        "before_kill": before,
        "failed_while_down": down,
        "late": late.seqs,
        "state": state,
    }


@pytest.mark.parametrize(("layer", "kind"), [(PUBSUB, "uvicorn"), (CORE, "daphne")])
def test_a_redis_restart_loses_nothing_that_was_acknowledged(
    start: StartServer, redis_server: RedisServer, layer: str, kind: str
) -> None:
    server = start(
        kind,
        env={
            "REDIS_URL": redis_server.url,
            "CHANNEL_LAYER_BACKEND": layer,
            "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:12],
            "DJANGO_SSE_PING_INTERVAL": "0.3",
        },
    )
    result = asyncio.run(scenario(server.url, redis_server))
    browsers: list[Browser] = result["browsers"]  # type: ignore[assignment]
    publisher: Publisher = result["publisher"]  # type: ignore[assignment]
    print(
        f"\n{kind} {layer.rsplit('.', 1)[1]}: {len(publisher.ok)} acknowledged, "
        f"{len(publisher.failed)} failed ({sorted(set(publisher.failed.values()))[:2]}); "
        f"reconnects {[b.reconnects for b in browsers]}; "
        f"refused while down {[len(b.failures) for b in browsers]} {browsers[0].failures[:2]}; "
        f"hub {result['state']}"
    )
    # Publishing failed loudly while Redis was down, and worked before and after.
    assert result["failed_while_down"], "no publish failed while Redis was down"
    assert int(result["before_kill"]) > 5  # type: ignore[call-overload]
    assert publisher.ok[-1] > max(publisher.failed)
    acknowledged = {*publisher.ok, publisher.seq}  # and the one published for the late client
    for browser in browsers:
        # In order, no duplicates, nothing acknowledged missing. A publish that failed after the
        # log took it (the layer send failed) may still be replayed: the publisher was told.
        assert browser.seqs == sorted(set(browser.seqs)), browser.seqs
        assert acknowledged <= set(browser.seqs), sorted(acknowledged - set(browser.seqs))
        assert set(browser.seqs) <= acknowledged | set(publisher.failed)
        # The hub dropped them when the layer failed, and they came back by themselves; while
        # Redis was down they were told to retry later, never given an error status (which
        # would make an EventSource give up for good).
        assert browser.reconnects >= 1
        assert browser.failures == []
        assert 1.0 <= browser.retry <= 3.0  # a random delay, so they do not all come back at once
    assert result["late"] == [publisher.seq]
    state = result["state"]
    assert state["hub"]["subscribers"] == CLIENTS + 1  # type: ignore[index]
    assert os.path.exists(redis_server.directory)


@pytest.mark.parametrize("layer", [PUBSUB, CORE])
def test_the_first_publish_after_a_redis_restart_succeeds(
    start: StartServer, redis_server: RedisServer, layer: str
) -> None:
    # Connections pooled before a restart are dead: the first command on one must not fail (the
    # publish was a 503), whether it writes (the log's append, the layer's send) or reads.
    server = start(
        "daphne",
        env={
            "REDIS_URL": redis_server.url,
            "CHANNEL_LAYER_BACKEND": layer,
            "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:12],
        },
    )
    with httpx.Client(base_url=server.url, timeout=20) as client:
        first = client.get("/test/rel/publish", params={"group": "x.first", "seq": 0})
        assert first.status_code == 200, first.text
        redis_server.kill()
        redis_server.start()
        second = client.get("/test/rel/publish", params={"group": "x.first", "seq": 1})
        assert second.status_code == 200, second.text
        redis_server.kill()
        redis_server.start()  # the log's append-only file keeps the event across the restart
        newest = client.get("/test/rel/newest", params={"group": "x.first"})
        assert newest.status_code == 200, newest.text
        assert newest.json()["id"] == second.json()["ids"][0]
