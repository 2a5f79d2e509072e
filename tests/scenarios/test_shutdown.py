"""Graceful shutdown: SIGTERM/SIGINT with 1,000 open streams, then a restart that loses nothing.

Endless streams must not keep a server from exiting: django_sse ends them on the server's stop
signal (django_sse/stopping.py), on every server with its default flags. The clients reconnect
to the restarted server (same port) with their ``Last-Event-ID`` and the Redis replay log gives
them exactly what was published meanwhile. tests/scenarios/test_server_stop.py counts the cleanups.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time

import pytest

from tests.conftest import StartServer
from tests.support.raw_client import RawStream, address
from tests.support.server_calls import publish_numbered, subscribers
from tests.support.servers import ServerProcess, make_env, shell
from tests.support.waiting import until

pytestmark = pytest.mark.server

STREAMS = 1000
# A functional bound, not a performance figure: "exits, does not hang". Measured alone: under
# 2 s; on a 2-core machine busy with other builds Daphne took over 10 s with 1,000 streams.
EXIT_BOUND = 60.0
GROUP = "x.shutdown"
PATH = "/test/live/open/shutdown"


def wait_for_subscribers(server: ServerProcess, count: int) -> None:
    until(lambda: subscribers(server, GROUP) >= count, within=120, interval=0.2)


async def open_all(url: str, last_ids: list[str | None]) -> list[RawStream]:
    """Open one stream per entry (with that ``Last-Event-ID``), a hundred connects at a time."""
    gate = asyncio.Semaphore(100)

    async def one(last_id: str | None) -> RawStream:
        stream = RawStream(url, PATH, {"Last-Event-ID": last_id} if last_id else None)
        async with gate:
            assert await stream.open(30) == 200
        return stream

    return list(await asyncio.gather(*(one(last_id) for last_id in last_ids)))


async def read_all(streams: list[RawStream], count: int) -> None:
    await asyncio.gather(*(stream.read_events(count, 30) for stream in streams))


def numbers(stream: RawStream) -> list[int]:
    return [json.loads(event.data)["n"] for event in stream.events()]


def stop_and_time(server: ServerProcess, sig: int) -> float:
    """Send ``sig``; return how long the server took to exit (fails past ``EXIT_BOUND``)."""
    started = time.monotonic()
    server.process.send_signal(sig)
    try:
        server.process.wait(EXIT_BOUND)
    except subprocess.TimeoutExpired:
        server.process.send_signal(
            signal.SIGUSR1
        )  # tests/support/asgi.py: dump every thread's stack
        try:
            until(lambda: "most recent call first" in server.log(), within=10)
        except AssertionError:
            pass  # the log below says what there is
        server.stop(signal.SIGKILL)
        pytest.fail(f"{server.kind} still running {EXIT_BOUND} s after {sig!r}:\n{server.log()}")
    elapsed = time.monotonic() - started
    server.stop()  # closes the test's copy of the listening socket: the port is free again
    return elapsed


# granian and hypercorn with SIGINT here: their SIGTERM with 1,000 streams is in test_server_stop.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "sig"),
    [
        *((kind, sig) for kind in ("daphne", "uvicorn") for sig in (signal.SIGTERM, signal.SIGINT)),
        ("granian", signal.SIGINT),
        ("hypercorn", signal.SIGINT),
    ],
    ids=lambda value: value.name if isinstance(value, signal.Signals) else value,
)
def test_a_server_with_1000_streams_exits_and_its_clients_resume_after_the_restart(
    start: StartServer, redis_url: str, server_database: str, kind: str, sig: int
) -> None:
    env = make_env(redis_url, server_database)
    server = start(kind, env=env)
    port = address(server.url)[1]

    async def scenario() -> tuple[float, list[RawStream], list[RawStream]]:
        streams = await open_all(server.url, [None] * STREAMS)
        await asyncio.to_thread(wait_for_subscribers, server, STREAMS)
        await asyncio.to_thread(publish_numbered, server, GROUP, 0, 3)
        await read_all(streams, 3)
        assert all(numbers(stream) == [0, 1, 2] for stream in streams)

        reading = asyncio.gather(*(stream.read_to_end(EXIT_BOUND + 5) for stream in streams))
        elapsed = await asyncio.to_thread(stop_and_time, server, sig)
        await reading
        for stream in streams:
            await stream.close()

        # While the server is down: published from another process, kept in the Redis log.
        await asyncio.to_thread(
            shell,
            "from django_sse import ServerSentEvent, publish_sync\n"
            "for n in range(3, 6):\n"
            f"    publish_sync({GROUP!r}, ServerSentEvent(data={{'n': n, 'owner': ''}}))\n",
            env,
        )
        restarted = await asyncio.to_thread(start, kind, env=env, port=port)
        assert restarted.url == server.url

        last_ids = [stream.events()[-1].last_event_id for stream in streams]
        resumed = await open_all(restarted.url, list(last_ids))
        await read_all(resumed, 3)  # the three missed ones, replayed
        await asyncio.to_thread(wait_for_subscribers, restarted, STREAMS)
        await asyncio.to_thread(
            publish_numbered, restarted, GROUP, 6, 2
        )  # and live ones after them
        await read_all(resumed, 5)
        for stream in resumed:
            await stream.close()
        return elapsed, streams, resumed

    elapsed, streams, resumed = asyncio.run(scenario())
    print(f"\n{kind} {signal.Signals(sig).name}: exited {elapsed:.2f} s after the signal")
    assert all(stream.eof for stream in streams)
    assert all(numbers(stream) == [3, 4, 5, 6, 7] for stream in resumed)
    # Redis stream ids ("<ms>-<seq>"): new ones, increasing from the last one seen before.
    ids = [streams[0].events()[-1].last_event_id] + [e.last_event_id for e in resumed[0].events()]
    keys = [tuple(int(part) for part in event_id.split("-")) for event_id in ids]
    assert keys == sorted(set(keys)) and len(keys) == 6
