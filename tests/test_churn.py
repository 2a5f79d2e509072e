"""Disconnect churn: 5,000 connect/disconnect cycles against a real server leave nothing behind.

Clients leave in the three ways real ones do: a clean close after the stream opened, an abrupt
RST (a vanished network), and a close right after the request, while the subscription is still
joining. Afterwards the server must hold no subscriber, no hub task, no channel-layer group
membership or channel, no more asyncio tasks than before, and about the memory it had.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tests.conftest import StartServer
from tests.raw_client import LINGER_RST, address, read_until, request, stats

pytestmark = pytest.mark.server

CYCLES = 5000
WARM_UP = 500
CONCURRENCY = 16
PATH = "/test/live/open/churn"


async def churn(url: str, cycles: int) -> dict[str, int]:
    host, port = address(url)
    payload = request(PATH)
    counts = {"clean": 0, "reset": 0, "early": 0}
    next_cycle = 0

    async def worker() -> None:
        nonlocal next_cycle
        while next_cycle < cycles:
            cycle = next_cycle
            next_cycle += 1
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(payload)
                if cycle % 10 == 9:
                    # Gone before the response: the subscription is cancelled while joining.
                    await writer.drain()
                    counts["early"] += 1
                    continue
                head = await read_until(reader, b": open", limit=30)
                assert head.startswith(b"HTTP/1.1 200"), head[:200]
                if cycle % 2:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                    counts["reset"] += 1
                else:
                    counts["clean"] += 1
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 240)
    return counts


def settled(url: str, tasks_before: int, timeout: float = 30) -> dict[str, object]:
    """Poll until the server released everything (the last releases run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        state = stats(url)
        hub = state["hub"]
        layer = state["layer"]
        assert isinstance(hub, dict) and isinstance(layer, dict)
        clean = (
            hub["subscribers"] == 0
            and hub["groups"] == {}
            and hub["channels"] == 0
            and hub["tasks"] == 0
            and layer["memberships"] == 0
            and layer["channels"] == 0
            and state["tasks"] == tasks_before
        )
        if clean or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_5000_disconnects_leave_nothing_behind(start: StartServer, kind: str) -> None:
    server = start(kind, env={"DJANGO_SSE_PING_INTERVAL": "5"})
    idle = stats(server.url)
    # Warm up first: imports, caches and the first hub allocate once, and that is not a leak.
    asyncio.run(churn(server.url, WARM_UP))
    before = settled(server.url, int(idle["tasks"]))  # type: ignore[call-overload]
    before = stats(server.url, collect=True)

    started = time.monotonic()
    counts = asyncio.run(churn(server.url, CYCLES))
    elapsed = time.monotonic() - started
    after = settled(server.url, int(before["tasks"]))  # type: ignore[call-overload]
    after_memory = stats(server.url, collect=True)

    print(
        f"\n{kind}: {CYCLES} cycles {counts} in {elapsed:.1f} s; "
        f"RSS {before['rss_kib']} KiB -> {after_memory['rss_kib']} KiB; state {after}"
    )
    assert sum(counts.values()) == CYCLES
    assert after["hub"] == {
        "groups": {},
        "subscribers": 0,
        "channels": 0,
        "tasks": 0,
        "received": 0,
    }
    assert after["layer"] == {"memberships": 0, "channels": 0}
    assert after["tasks"] == before["tasks"]
    assert int(after_memory["rss_kib"]) <= int(before["rss_kib"]) * 1.10  # type: ignore[call-overload]
    assert server.process.poll() is None
