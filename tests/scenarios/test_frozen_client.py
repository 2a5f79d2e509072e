"""A client that stops reading: it must not delay the others, must cost bounded memory, must be
dropped, and must later resume from its last id with nothing lost.

The frozen client is a raw socket with a 4 KiB receive buffer that reads its response head and
then never calls ``recv()`` again. Ten other clients read everything and measure the time from
``publish()`` (stamped inside the server with ``time.monotonic()``, one clock for all processes)
to receipt, first without the frozen client, then with it, in the same run. Timing is only
reported; the asserts are about what was delivered, what was dropped and what was resumed.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.raw_client import Browser, all_received, frozen_socket, stats
from tests.support.waiting import until

pytestmark = [pytest.mark.server, pytest.mark.slow]

READERS = 10
BATCHES = 40
BATCH = 10
PAD = 16000  # bytes per event: 400 events outgrow the 4 MiB a loopback send buffer may reach


async def publish_batches(
    client: httpx.AsyncClient, group: str, start: int, batches: int = BATCHES
) -> int:
    """``batches`` * ``BATCH`` events at a steady pace; returns the next sequence number."""
    seq = start
    for _ in range(batches):
        response = await client.get(
            "/test/rel/publish", params={"group": f"x.{group}", "n": BATCH, "seq": seq, "pad": PAD}
        )
        assert response.status_code == 200, response.text
        seq += BATCH
        await asyncio.sleep(0.025)  # the publishing pace, not a wait
    return seq


def summary(readers: list[Browser], seqs: range) -> dict[str, float]:
    values = sorted(r.latency[s] for r in readers for s in seqs)
    return {
        "p50_ms": 1000 * statistics.median(values),
        "p99_ms": 1000 * values[int(0.99 * (len(values) - 1))],
        "max_ms": 1000 * values[-1],
    }


def drain(sock: socket.socket, quiet: float = 2.0) -> bytes:
    """Read what the frozen client had been sent, until the server closes or goes quiet."""
    sock.settimeout(quiet)
    data = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def subscribed(url: str) -> int:
    return int(stats(url)["hub"]["subscribers"])  # type: ignore[index]


async def scenario(url: str, group: str, subscribers_after: int) -> dict[str, object]:
    """``subscribers_after``: how many the hub holds once the publishing is over."""
    path = f"/test/rel/stream/{group}"
    readers = [Browser(url, path) for _ in range(READERS)]
    for reader in readers:
        await reader.open()
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        # Fill the in-memory replay log to its window first, so that its size stays the same
        # from here on and the RSS measured below is what the frozen client costs.
        for seq in range(-1000, 0, 100):
            response = await client.get(
                "/test/rel/publish",
                params={"group": f"x.{group}", "n": 100, "seq": seq, "pad": PAD},
            )
            assert response.status_code == 200
        await all_received(readers, 1000)
        for reader in readers:
            reader.seqs.clear()
        # Without the frozen client.
        middle = await publish_batches(client, group, 0)
        await all_received(readers, middle)
        without = summary(readers, range(middle))

        frozen = frozen_socket(url, path, version="1.0")
        head = frozen.recv(4096)  # the response head and the opening comment, then nothing
        assert b" 200 " in head.split(b"\r\n", 1)[0], head[:200]
        await asyncio.to_thread(until, lambda: subscribed(url) == READERS + 1)
        before = stats(url, collect=True)

        # With it: the same publishing, while its buffers fill up and it falls behind.
        # Twice as many as before: 12.8 MB, well past what the kernel buffers for one socket
        # (up to 4 MiB) plus SUBSCRIBER_MAX_BYTES (4 MiB), so that an unbounded server buffer
        # would show.
        end = await publish_batches(client, group, middle, 2 * BATCHES)
        await all_received(readers, end)
        with_frozen = summary(readers, range(middle, end))
        await asyncio.to_thread(until, lambda: subscribed(url) == subscribers_after)
        after = stats(url, collect=True)

    # The others got everything, in order.
    for reader in readers:
        assert reader.seqs == list(range(end))

    # The frozen client wakes up: it reads what it had been sent, then reconnects with the last
    # id it saw, as a browser does, and must get exactly the rest.
    woken = Browser(url, path)
    woken.feed(head.split(b"\r\n\r\n", 1)[1] + drain(frozen))
    frozen.close()
    assert woken.last_id is not None
    resumed = Browser(url, path, last_event_id=woken.last_id)
    await resumed.open()
    # It joined at ``middle``; a reconnect after the last event has nothing to replay.
    if woken.seqs[-1:] != [end - 1]:
        await all_received([resumed], end - middle - len(woken.seqs))
    else:
        await asyncio.sleep(1)  # what is under test: nothing is replayed
    assert woken.seqs + resumed.seqs == list(range(middle, end))
    for reader in [*readers, resumed]:
        await reader.close()
    return {
        "without": without,
        "with": with_frozen,
        "rss_growth_kib": int(after["rss_kib"]) - int(before["rss_kib"]),  # type: ignore[call-overload]
        "subscribers_after": after["hub"]["subscribers"],  # type: ignore[index]
        "frozen_got": len(woken.seqs),
        "resumed_got": len(resumed.seqs),
        "reader_reconnects": sum(r.reconnects for r in readers),
    }


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_frozen_client_is_dropped_and_resumes_without_slowing_the_others(
    start: StartServer, kind: str
) -> None:
    server = start(kind, env={"DJANGO_SSE_PING_INTERVAL": "5"})
    result = asyncio.run(scenario(server.url, "frozen", subscribers_after=READERS))
    print(f"\n{kind}: {result}")
    # Dropped: only the ten readers are left in the hub, and it was cut off before the end.
    assert result["subscribers_after"] == READERS
    assert int(result["frozen_got"]) < 2 * BATCHES * BATCH  # type: ignore[call-overload]
    # Bounded: the server kept at most about SUBSCRIBER_MAX_BYTES for it, not the 12.8 MB sent
    # to the others.
    assert int(result["rss_growth_kib"]) < 6 * 1024  # type: ignore[call-overload]
    # Not delayed: a generous sanity bound, not a performance threshold.
    assert result["with"]["max_ms"] < 10_000  # type: ignore[index]


def test_control_without_a_byte_budget_daphne_buffers_everything_for_a_frozen_client(
    start: StartServer,
) -> None:
    """What SUBSCRIBER_MAX_BYTES is for: Daphne never blocks a write, so without the budget the
    frozen subscriber never falls behind, is never dropped, and the server holds everything
    the kernel would not take."""
    server = start(
        "daphne",
        env={"DJANGO_SSE_PING_INTERVAL": "5", "DJANGO_SSE_SUBSCRIBER_MAX_BYTES": "0"},
    )
    result = asyncio.run(scenario(server.url, "control", subscribers_after=READERS + 1))
    print(f"\ndaphne without SUBSCRIBER_MAX_BYTES: {result}")
    assert result["subscribers_after"] == READERS + 1
    assert result["frozen_got"] == 2 * BATCHES * BATCH
    assert int(result["rss_growth_kib"]) > 4 * 1024  # type: ignore[call-overload]
