"""``publish_sync`` from sync code: shells, worker threads, and sync views of a real server.

Sync publishing runs on one long-lived event loop per process (django_sse/live/loop_thread.py), so
that its Redis connections are opened once, not twice per call: a new loop per call, as
``async_to_sync`` outside a running loop makes, measured 2,001 connections and 5.0 ms per call
for 1,000 calls in ``manage.py shell``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.raw_client import Browser, all_received
from tests.support.redis_server import RedisServer
from tests.support.servers import manage

pytestmark = pytest.mark.server

CALLS = 1000

SHELL = f"""
import json, time
from django_sse import publish_sync
times, ids = [], set()
for n in range({CALLS}):
    started = time.perf_counter()
    ids.add(publish_sync("sync.shell", {{"n": n}}))
    times.append(time.perf_counter() - started)
times.sort()
print(json.dumps({{"ids": len(ids), "median_ms": 1000 * times[len(times) // 2]}}))
"""


def connections(redis: RedisServer) -> int:
    return int(redis.info("stats")["total_connections_received"])


def test_a_shell_publishing_a_thousand_times_opens_a_few_redis_connections(
    redis_server: RedisServer,
) -> None:
    env = {"REDIS_URL": redis_server.url, "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:8]}
    before = connections(redis_server)
    output = manage("shell", "-c", SHELL, env=env)
    opened = connections(redis_server) - before
    result = json.loads(output.strip().splitlines()[-1])
    print(f"\n{CALLS} publish_sync calls: {opened} connections, {result['median_ms']:.2f} ms each")
    assert result["ids"] == CALLS  # every call published, each under an id of its own
    # The replay log's client and the channel layer's: opened once, not per call (was 2,001).
    assert opened <= 10
    # All of them closed when the shell exited: the one left is the INFO query's own.
    assert int(redis_server.info("clients")["connected_clients"]) == 1


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_a_sync_view_publishes_to_the_hub_of_the_serving_loop(
    start: StartServer, kind: str
) -> None:
    # The in-memory layer (no REDIS_URL): the event must reach this server's hub, which lives
    # in the server's loop, from the view's worker thread and the publishing loop.
    server = start(kind)

    async def scenario() -> list[int]:
        browser = Browser(server.url, "/test/rel/stream/syncview")
        await browser.open()
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            response = await client.get(
                "/test/rel/publish-sync", params={"group": "x.syncview", "n": 20}
            )
            assert response.status_code == 200, response.text
        await all_received([browser], 20)
        await browser.close()
        return browser.seqs

    assert asyncio.run(scenario()) == list(range(20))


def test_publish_sync_from_many_threads_at_once(redis_url: str) -> None:
    # A threaded WSGI server or a task worker's thread pool: all share the publishing loop.
    from django.test import override_settings

    from django_sse import publish_sync
    from django_sse.live.state import live_state

    options = {
        "REPLAY_BACKEND": "redis",
        "REDIS_URL": redis_url,
        "KEY_PREFIX": "t" + uuid.uuid4().hex[:8],
    }
    ids: list[str] = []
    lock = threading.Lock()

    def publisher(k: int) -> None:
        for n in range(50):
            event_id = publish_sync("sync.threads", {"k": k, "n": n})
            with lock:
                ids.append(event_id)

    with override_settings(DJANGO_SSE=options):
        live_state.reset()
        try:
            threads = [threading.Thread(target=publisher, args=(k,)) for k in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        finally:
            live_state.reset()
    assert len(set(ids)) == 8 * 50


async def test_publish_sync_refuses_to_block_a_running_loop() -> None:
    from django_sse import publish_sync

    with pytest.raises(RuntimeError, match="async code"):
        publish_sync("sync.refused", 1)
