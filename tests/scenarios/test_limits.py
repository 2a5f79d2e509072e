"""MAX_STREAMS and the per-client limit, against real servers and raw sockets.

A full process answers a new stream 503 with a jittered ``Retry-After`` before any byte of a
stream, and its count of open streams stays exact however clients leave: cleanly, by RST, in
the middle of their request line, or right after the request (while the stream is joining).
"""

from __future__ import annotations

import asyncio
import gc
import socket

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.raw_client import LINGER_RST, address, read_until, request
from tests.support.server_kinds import server_kinds
from tests.support.waiting import until, until_async

pytestmark = pytest.mark.server

LIMIT = 8
CHURN_CYCLES = 400
CONCURRENCY = 8


def limit_stats(url: str) -> dict[str, object]:
    response = httpx.get(url + "/test/limits/stats", timeout=60)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def open_count(url: str) -> int:
    limits = limit_stats(url)["limits"]
    assert isinstance(limits, dict)
    return int(limits["open"])


class Stream:
    """One raw connection that asked for an event stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes):
        self.reader, self.writer, self.head = reader, writer, head

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode()
        return None

    async def close(self, rst: bool = False) -> None:
        if rst:
            self.writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST
            )
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


async def connect(url: str, path: str) -> Stream:
    """Open ``path``; return once the stream opened (``: open``) or the refusal's head arrived."""
    host, port = address(url)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request(path))
    head = await read_until(reader, b"\r\n\r\n", limit=60)
    if head.startswith(b"HTTP/1.1 200"):
        head = await read_until_more(reader, head, b": open")
    return Stream(reader, writer, head)


async def read_until_more(reader: asyncio.StreamReader, head: bytes, marker: bytes) -> bytes:
    if marker in head:
        return head
    return head + await read_until(reader, marker, limit=60)


async def churn(url: str, path: str, cycles: int) -> dict[str, int]:
    """Connect and leave ``cycles`` times, in every way a client can leave."""
    host, port = address(url)
    payload = request(path)
    # Held by a slow middleware after the stream was set up, before the response starts
    # (tests/support/slow_middleware.py): a client that leaves then is given up by Django,
    # which drops the response without closing it.
    slow_payload = request(path + "?slow=0.2")
    counts = {"mid-request": 0, "after-request": 0, "opened": 0, "refused": 0}
    next_cycle = 0

    async def worker() -> None:
        nonlocal next_cycle
        while next_cycle < cycles:
            cycle = next_cycle
            next_cycle += 1
            reader, writer = await asyncio.open_connection(host, port)
            sock = writer.get_extra_info("socket")
            try:
                if cycle % 4 == 0:
                    # Gone in the middle of the request line: no request reaches Django.
                    writer.write(payload[: len(payload) // 2])
                    await writer.drain()
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                    counts["mid-request"] += 1
                    continue
                writer.write(slow_payload if cycle % 8 == 1 else payload)
                await writer.drain()
                if cycle % 4 == 1:
                    # Gone right after the request: cancelled while the stream is being set up,
                    # or while a middleware holds its response.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                    counts["after-request"] += 1
                    continue
                head = await read_until(reader, b"\r\n\r\n", limit=60)
                if head.startswith(b"HTTP/1.1 503"):
                    counts["refused"] += 1
                    continue
                assert head.startswith(b"HTTP/1.1 200"), head[:200]
                await read_until_more(reader, head, b": open")
                counts["opened"] += 1
                if cycle % 4 == 2:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 600)
    return counts


@pytest.mark.parametrize("kind", server_kinds())
def test_max_streams_refuses_and_the_count_stays_exact_under_churn(
    start: StartServer, kind: str
) -> None:
    env = {"DJANGO_SSE_MAX_STREAMS": str(LIMIT), "DJANGO_SSE_TEST_SLOW_MIDDLEWARE": "1"}
    server = start(kind, env=env)
    path = "/test/limits/open/churn"

    async def scenario() -> None:
        streams = [await connect(server.url, path) for _ in range(LIMIT)]
        assert [s.status for s in streams] == [200] * LIMIT
        until(lambda: open_count(server.url) == LIMIT)

        refused = await connect(server.url, path)
        assert refused.status == 503, refused.head
        retry_after = refused.header("Retry-After")
        assert retry_after is not None and 2 <= int(retry_after) <= 10, refused.head
        # Refused before any byte of a stream: no event-stream body, no subscriber.
        assert b": open" not in refused.head
        await refused.close()

        # Three leave, cleanly and abruptly; their slots come back.
        await streams.pop().close()
        await streams.pop().close(rst=True)
        await streams.pop().close(rst=True)
        staying = len(streams)
        until(lambda: open_count(server.url) == staying)

        counts = await churn(server.url, path, CHURN_CYCLES)
        assert counts["opened"] > 0 and counts["after-request"] > 0, counts

        def settled() -> dict[str, object] | None:
            state = limit_stats(server.url)
            limits = state["limits"]
            assert isinstance(limits, dict)
            if limits["open"] == staying and state["subscribers"] == staying:
                return state
            return None

        state = until(settled, within=120)
        assert state is not None
        limits = state["limits"]
        assert isinstance(limits, dict)
        assert limits["max"] == LIMIT

        # The freed slots are usable again, and the limit still holds exactly.
        streams += [await connect(server.url, path) for _ in range(LIMIT - staying)]
        assert [s.status for s in streams] == [200] * LIMIT
        until(lambda: open_count(server.url) == LIMIT)
        again = await connect(server.url, path)
        assert again.status == 503, again.head
        await again.close()
        for stream in streams:
            await stream.close()
        until(lambda: open_count(server.url) == 0)

    asyncio.run(scenario())


def test_a_client_past_its_limit_gets_429(start: StartServer) -> None:
    server = start("daphne")
    path = "/test/limits/per-client/mine"

    async def scenario() -> None:
        first, second = [await connect(server.url, path) for _ in range(2)]
        assert (first.status, second.status) == (200, 200)
        third = await connect(server.url, path)
        assert third.status == 429, third.head
        assert third.header("Retry-After") is not None
        await third.close()
        # One of them leaves: the same client may open another.
        await first.close(rst=True)
        until(lambda: limit_stats(server.url)["limits"]["clients"] == 1)  # type: ignore[index]
        fourth = await connect(server.url, path)
        assert fourth.status == 200, fourth.head
        for stream in (second, fourth):
            await stream.close()
        until(lambda: limit_stats(server.url)["limits"]["clients"] == 0)  # type: ignore[index]

    asyncio.run(scenario())


@pytest.mark.urls("tests.support.urls")
@pytest.mark.parametrize("placement", ["last", "first", "in front of a sync-only one"])
async def test_responses_django_drops_give_their_lease_back(placement: str) -> None:
    """A client gone before the response starts: Django drops the response without closing it."""
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    from django_sse import limits
    from tests.unit.test_middleware import PLACEMENTS, request_then_leave

    before = limits.open_streams.open(limits.PROCESS)
    # No garbage collection here: the count must not wait for one (a dropped response may live
    # on in a reference cycle).
    gc.disable()
    try:
        with override_settings(MIDDLEWARE=PLACEMENTS[placement]):
            app = ASGIHandler()
            started = 0
            for cycle in range(200):
                delay = 0.0 if cycle % 2 else [0.001, 0.003, 0.006, 0.01][cycle % 4]
                path = "/test/live/open/leases"
                messages = await request_then_leave(app, path, cycle % 40, delay)
                started += "http.response.start" in messages
        assert 0 < started < 200
        # Releases from Django's threads reach the event loop a few turns later.
        await until_async(lambda: limits.open_streams.open(limits.PROCESS) == before)
    finally:
        gc.enable()
