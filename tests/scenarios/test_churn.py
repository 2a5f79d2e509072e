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
from tests.support.raw_client import LINGER_RST, address, read_until, request, stats
from tests.support.waiting import until

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

    # About 30 s alone, 115 s beside two busy loops on 2 cores: the bound only catches a hang.
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 600)
    return counts


def settled(url: str, tasks_before: int, within: float = 120) -> dict[str, object]:
    """The server's state once it released everything, or as it is after ``within`` seconds.

    The last releases run in the background, and on a loaded machine the server may still be
    working through the backlog of thousands of short requests: wait on the condition, with a
    deadline far beyond what a healthy run needs; the assertions then say what is left.
    """

    def clean() -> dict[str, object] | None:
        state = stats(url)
        hub = state["hub"]
        layer = state["layer"]
        assert isinstance(hub, dict) and isinstance(layer, dict)
        done = (
            hub["subscribers"] == 0
            and hub["groups"] == {}
            and hub["channels"] == 0
            and hub["tasks"] == 0
            and layer["memberships"] == 0
            and layer["channels"] == 0
            and state["tasks"] == tasks_before
        )
        return state if done else None

    try:
        state = until(clean, within, interval=0.2)
        assert state is not None  # until() returns a true value
        return state
    except AssertionError:
        return stats(url)


@pytest.mark.slow
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
    # RSS grew 4-6 % here on a quiet machine (92.5 -> 96.3-98.0 MB, Daphne) and 10.2 % with
    # three CI legs running at once, where more requests overlap: the allocator keeps its peak.
    # A real per-cycle leak of 3 KiB (15 MB over these cycles) still fails the bound.
    assert int(after_memory["rss_kib"]) <= int(before["rss_kib"]) * 1.15  # type: ignore[call-overload]
    assert server.process.poll() is None


# Seconds the outer middleware holds the response back (tests/support/slow_middleware.py).
HOLD = 2.0


def released(url: str) -> bool:
    state = stats(url)
    return state["hub"] == {
        "groups": {},
        "subscribers": 0,
        "channels": 0,
        "tasks": 0,
        "received": 0,
    }


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_client_gone_before_the_response_started_is_released(
    start: StartServer, kind: str
) -> None:
    """The churn test's flake under load, made deterministic.

    On a busy machine the thread hops of the middleware outside ``EventStreamMiddleware`` take
    long enough for some of 5,000 early disconnects to land between the subscription's join and
    the response start (measured under CPU load: 368 of 3,000 such disconnects leaked on Daphne,
    still there minutes later). A slow middleware lands one there every time.
    """
    server = start(kind, env={"DJANGO_SSE_TEST_SLOW_MIDDLEWARE": "1"})

    async def leave_while_held() -> None:
        _, writer = await asyncio.open_connection(*address(server.url))
        writer.write(request(f"/test/live/open/held?slow={HOLD}"))
        await writer.drain()
        # Joined inside EventStreamMiddleware; the response is still held outside it.
        await asyncio.to_thread(
            until,
            lambda: stats(server.url)["hub"]["groups"] == {"x.held": 1},  # type: ignore[index]
        )
        writer.close()
        await writer.wait_closed()

    asyncio.run(leave_while_held())
    until(lambda: released(server.url), within=HOLD + 30)
    assert server.process.poll() is None
