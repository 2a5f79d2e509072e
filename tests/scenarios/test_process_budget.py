"""Many clients that stop reading cost a bounded amount of memory per process, on Daphne.

Daphne never blocks a write: for a client that stopped reading, Twisted keeps what was written,
up to ``SUBSCRIBER_MAX_BYTES`` per stream, so without a process-wide bound a few hundred frozen
clients hold gigabytes. The frozen clients here are raw sockets with a 4 KiB receive buffer that
read their response head and never call ``recv()`` again; readers are browser-like clients that
reconnect with ``Last-Event-ID`` when their stream ends. The same scenario runs with the budget
(``PROCESS_MAX_BYTES``) and without it (the control), and the server's RSS is compared.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.conftest import StartServer
from tests.scenarios.test_frozen_client import PAD, drain
from tests.support.raw_client import Browser, all_received, frozen_socket, stats
from tests.support.waiting import until_async

pytestmark = pytest.mark.server

FROZEN = 40
READERS = 5
EVENTS = 300  # 4.8 MB per stream: past SUBSCRIBER_MAX_BYTES (4 MiB) for every frozen client
BUDGET = 8 * 1024 * 1024


async def publish(client: httpx.AsyncClient, group: str, start: int, count: int) -> None:
    for seq in range(start, start + count, 10):
        response = await client.get(
            "/test/rel/publish", params={"group": f"x.{group}", "n": 10, "seq": seq, "pad": PAD}
        )
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.02)  # the publishing pace, not a wait


async def scenario(url: str, group: str) -> dict[str, object]:
    path = f"/test/rel/stream/{group}"
    readers = [Browser(url, path, retry=0.1) for _ in range(READERS)]
    for reader in readers:
        await reader.open()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        # Fill the memory replay log to its window first: its size stays the same from here on.
        await publish(client, group, -1000, 1000)
        await all_received(readers, 1000, limit=120)
        for reader in readers:
            reader.seqs.clear()
        frozen: list[tuple[socket.socket, bytes]] = []
        for _ in range(FROZEN):
            sock = frozen_socket(url, path)
            frozen.append((sock, sock.recv(4096)))  # the head and ": open", then nothing
        # ": open" came after the join: every stream is a subscriber before the measurement.
        subscribers = READERS + FROZEN
        await until_async(lambda: stats(url)["hub"]["subscribers"] >= subscribers)  # type: ignore[index]
        before = stats(url, collect=True)
        started = time.monotonic()
        await publish(client, group, 0, EVENTS)
        published = time.monotonic() - started
        await all_received(readers, EVENTS, limit=120)
        if group == "budget":
            # Measured once the budget has ended the frozen streams (the control keeps them).
            await until_async(lambda: stats(url)["budget"]["ended"] >= FROZEN, within=60)  # type: ignore[index]
        after = stats(url, collect=True)
    # The readers got everything once, in order, across the reconnects the budget caused.
    for reader in readers:
        assert reader.seqs == list(range(EVENTS)), reader.seqs[:20]
    # Frozen clients that wake up read what they were sent, then resume by id: nothing lost.
    for sock, head in frozen[:3]:
        woken = Browser(url, path)
        woken.feed(head.split(b"\r\n\r\n", 1)[1] + drain(sock))
        assert woken.last_id is not None
        resumed = Browser(url, path, last_event_id=woken.last_id)
        await resumed.open()
        await all_received([resumed], EVENTS - len(woken.seqs), limit=60)
        assert woken.seqs + resumed.seqs == list(range(EVENTS))
        await resumed.close()
    for sock, _ in frozen:
        sock.close()
    for reader in readers:
        await reader.close()
    return {
        "rss_growth_kib": int(after["rss_kib"]) - int(before["rss_kib"]),  # type: ignore[call-overload]
        "budget": after["budget"],
        "publish_s": round(published, 1),
        "reader_reconnects": sum(r.reconnects for r in readers),
    }


def test_many_frozen_clients_cost_bounded_memory_with_the_process_budget(
    start: StartServer,
) -> None:
    results = {}
    for name, budget in [("budget", BUDGET), ("control", 0)]:
        server = start(
            "daphne",
            env={"DJANGO_SSE_PING_INTERVAL": "5", "DJANGO_SSE_PROCESS_MAX_BYTES": str(budget)},
        )
        results[name] = asyncio.run(scenario(server.url, name))
        server.stop()
        print(f"\ndaphne, {FROZEN} frozen clients, {name}: {results[name]}")
    with_budget, control = results["budget"], results["control"]
    assert with_budget["budget"]["ended"] >= FROZEN  # type: ignore[index]
    assert control["budget"]["ended"] == 0  # type: ignore[index]
    # Without the budget every frozen client holds up to SUBSCRIBER_MAX_BYTES.
    assert int(control["rss_growth_kib"]) > 4 * BUDGET // 1024  # type: ignore[call-overload]
    assert int(with_budget["rss_growth_kib"]) < 2 * BUDGET // 1024  # type: ignore[call-overload]
