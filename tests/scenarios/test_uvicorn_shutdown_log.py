"""uvicorn with ``--timeout-graceful-shutdown``: event streams end first, the rest is cancelled.

django_sse ends its event streams on the signal (django_sse/stopping.py), before uvicorn's
timeout runs out. What uvicorn cancels then (here a plain streaming response) it logs as
``Exception in ASGI application`` with a traceback per task, after its own one line ``Cancel N
running task(s), timeout graceful shutdown exceeded``: only the one line remains.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.conftest import StartServer
from tests.support.raw_client import address, read_until, request

pytestmark = pytest.mark.server

# A subscription, an endless generator, a generator that waits before its first event.
# and a plain streaming response, which only uvicorn's timeout ends.
PATHS = [
    "/test/live/open/shutdown-log",
    "/test/endless",
    "/test/late?delay=3600",
    "/test/stop/plain",
]
STREAMS = 4


async def open_streams(url: str) -> list[asyncio.StreamWriter]:
    host, port = address(url)
    writers = []
    for n in range(STREAMS):
        reader, writer = await asyncio.open_connection(host, port)
        path = PATHS[n % len(PATHS)]
        writer.write(request(path))
        await read_until(reader, b"line\n" if path.endswith("plain") else b"\n\n", limit=30)
        writers.append(writer)
    return writers


def test_cancelled_streams_log_one_line_not_a_traceback_each(start: StartServer) -> None:
    server = start("uvicorn", args=["--timeout-graceful-shutdown", "1"])

    async def run() -> None:
        writers = await open_streams(server.url)
        server.process.send_signal(signal.SIGINT)  # Ctrl-C (SIGTERM ends the process too soon)
        await asyncio.to_thread(server.process.wait, 60)
        for writer in writers:
            writer.close()

    asyncio.run(run())
    log = server.log()
    assert "ending 3 event streams" in log, log
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in log, log
    assert "Exception in ASGI application" not in log, log
    assert "Traceback" not in log, log
    assert "Task was destroyed but it is pending" not in log, log
