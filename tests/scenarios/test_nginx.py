"""Daphne behind Debian's nginx, with the config of docs/topics/deployment.md
(tests/support/nginx.py).

Events arrive one by one (the response's ``X-Accel-Buffering: no`` turns nginx's proxy
buffering off for the stream), pings keep an idle stream alive past a ``proxy_read_timeout``
shorter than the stream, and a reconnect's ``Last-Event-ID`` reaches the server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES, StartServer
from tests.support.nginx import Nginx, nginx_binary, start_nginx
from tests.support.raw_client import RawStream, address
from tests.support.server_calls import publish_numbered, subscribers
from tests.support.servers import ServerProcess
from tests.support.waiting import until, until_async

pytestmark = pytest.mark.server

StartNginx = Callable[..., Nginx]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[StartNginx]:
    binary = nginx_binary()
    if binary is None:
        message = "nginx is not installed (.ci/run installs it: apt-get install nginx)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and DJANGO_SSE_REQUIRE_SERVICES=1")
        pytest.skip(message)
    started: list[Nginx] = []

    def _start(server: ServerProcess, **kwargs: str) -> Nginx:
        host, port = address(server.url)
        nginx = start_nginx(binary, tmp_path / f"nginx{len(started)}", f"{host}:{port}", **kwargs)
        started.append(nginx)
        return nginx

    yield _start
    for nginx in started:
        nginx.stop()


def numbers(stream: RawStream) -> list[int]:
    return [json.loads(event.data)["n"] for event in stream.events()]


# What a config that compresses every text response adds: nginx's gzip holds output back until
# its buffer fills, unless the response says it is already encoded (Content-Encoding).
GZIP_EVERYTHING = "gzip on; gzip_types text/event-stream; gzip_min_length 0;"


def test_events_arrive_through_nginx_one_by_one(start: StartServer, proxy: StartNginx) -> None:
    # No pings while the test waits: only the event itself can get through.
    server = start("daphne", env={"DJANGO_SSE_PING_INTERVAL": "600"})
    nginx = proxy(server, extra=GZIP_EVERYTHING)

    async def scenario() -> RawStream:
        # As a browser asks: compressed if possible.
        stream = RawStream(nginx.url, "/test/live/open/nginx1", {"Accept-Encoding": "gzip"})
        assert await stream.open(30) == 200
        await asyncio.to_thread(until, lambda: subscribers(server, "x.nginx1") == 1)
        for n in range(5):
            await asyncio.to_thread(publish_numbered, server, "x.nginx1", n)
            # One small event, nothing after it: a buffering proxy would sit on it.
            await stream.read_events(n + 1, within=30)
            assert numbers(stream) == list(range(n + 1)), nginx.log()
        await stream.close()
        return stream

    stream = asyncio.run(scenario())
    head = stream.head.decode().lower()
    assert "server: nginx" in head
    assert "content-type: text/event-stream; charset=utf-8" in head
    assert "content-encoding: gzip" not in head
    # The server asks nginx not to buffer; nginx takes X-Accel-* headers as its own and does
    # not pass them on.
    direct = asyncio.run(head_of(server.url + "/test/live/open/nginx1"))
    assert "x-accel-buffering: no" in direct
    assert "x-accel-buffering" not in head


async def head_of(url: str) -> str:
    host, port = address(url)
    stream = RawStream(f"http://{host}:{port}", url.split(str(port), 1)[1])
    assert await stream.open(30) == 200
    await stream.close()
    return stream.head.decode().lower()


def test_pings_keep_a_stream_alive_past_nginx_read_timeout(
    start: StartServer, proxy: StartNginx
) -> None:
    pinged = start("daphne", env={"DJANGO_SSE_PING_INTERVAL": "0.5"})
    silent = start("daphne", env={"DJANGO_SSE_PING_INTERVAL": "600"})
    through_pinged = proxy(pinged, read_timeout="3s")
    through_silent = proxy(silent, read_timeout="3s")

    async def scenario() -> tuple[RawStream, RawStream]:
        alive = RawStream(through_pinged.url, "/test/live/open/nginx2")
        cut = RawStream(through_silent.url, "/test/live/open/nginx2")
        assert await alive.open(30) == 200 and await cut.open(30) == 200
        await asyncio.to_thread(until, lambda: subscribers(pinged, "x.nginx2") == 1)

        async def idle_for_three_timeouts() -> bool:
            # 18 pings 0.5 s apart: 9 s without an event, three times the read timeout.
            try:
                await alive.read_to_end(within=0.5)
            except TimeoutError:
                pass  # still open: what the test expects
            return alive.body.count(b": ping\n\n") >= 18 or alive.eof

        await until_async(idle_for_three_timeouts, within=120)
        assert not alive.eof, through_pinged.log()
        await asyncio.to_thread(publish_numbered, pinged, "x.nginx2", 7)
        await alive.read_events(1, within=30)
        # The control: the same config and stream without pings is cut by nginx.
        await cut.read_to_end(within=120)
        await alive.close()
        await cut.close()
        return alive, cut

    alive, cut = asyncio.run(scenario())
    assert numbers(alive) == [7]
    assert cut.eof and not cut.events()
    assert "upstream timed out" in through_silent.log()


def test_a_reconnect_with_last_event_id_passes_through_nginx(
    start: StartServer, proxy: StartNginx
) -> None:
    server = start("daphne", env={"DJANGO_SSE_PING_INTERVAL": "600"})
    nginx = proxy(server)

    async def scenario() -> RawStream:
        first = RawStream(nginx.url, "/test/live/open/nginx3")
        assert await first.open(30) == 200
        await asyncio.to_thread(until, lambda: subscribers(server, "x.nginx3") == 1)
        await asyncio.to_thread(publish_numbered, server, "x.nginx3", 0, 3)
        await first.read_events(3, within=30)
        await first.close()
        await asyncio.to_thread(until, lambda: subscribers(server, "x.nginx3") == 0)
        await asyncio.to_thread(publish_numbered, server, "x.nginx3", 3, 3)  # missed while away
        last_id = first.events()[-1].last_event_id
        assert last_id
        again = RawStream(nginx.url, "/test/live/open/nginx3", {"Last-Event-ID": last_id})
        assert await again.open(30) == 200
        await again.read_events(3, within=30)
        await again.close()
        return again

    again = asyncio.run(scenario())
    assert numbers(again) == [3, 4, 5]
