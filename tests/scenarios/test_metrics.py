"""Prometheus metrics against real servers: one process, then two sharing a multiprocess dir.

The figures are read the way an operator reads them: from the ``/metrics`` endpoint (text
exposition, parsed by prometheus-client) and from ``manage.py sse_status``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_sse.management.commands.sse_status import summarize
from tests.conftest import StartServer
from tests.support.raw_client import Browser, all_received, frozen_socket
from tests.support.servers import manage
from tests.support.waiting import until

pytestmark = pytest.mark.server


def figures(url: str) -> dict[str, object]:
    text = httpx.get(url + "/test/metrics", timeout=60).text
    return summarize(list(text_string_to_metric_families(text)))


def figure(status: dict[str, object], name: str, label: str = "") -> float:
    rows = status["figures"]
    assert isinstance(rows, dict)
    row = rows.get(f"django_sse_{name}", {})
    if label:
        return float(row.get(label, 0.0))
    return float(sum(row.values()))


def figures_when(url: str, name: str, minimum: float, label: str = "") -> dict[str, object]:
    """The figures, once ``name`` (with ``label``) has reached ``minimum``."""

    def reached() -> dict[str, object] | None:
        status = figures(url)
        return status if figure(status, name, label) >= minimum else None

    result = until(reached)
    assert result is not None
    return result


def publish(url: str, group: str, n: int, seq: int = 0, pad: int = 0) -> None:
    params: dict[str, str | int] = {"group": group, "n": n, "seq": seq, "pad": pad}
    response = httpx.get(url + "/test/rel/publish", params=params, timeout=60)
    response.raise_for_status()


def test_one_process_counts_streams_events_replays_resets_and_laggards(
    start: StartServer,
) -> None:
    # uvicorn blocks a write once a client stops reading: a frozen client then falls behind.
    # It stops reading a connection while it serves a request, so it notices a client gone
    # from an idle stream only when the next ping fails: ping often.
    env = {
        "DJANGO_SSE_METRICS": "1",
        "DJANGO_SSE_SUBSCRIBER_MAX_BYTES": "0",
        "DJANGO_SSE_PING_INTERVAL": "0.3",
    }
    server = start("uvicorn", env=env)
    url = server.url
    path = "/test/rel/stream/metrics"

    async def scenario() -> None:
        readers = [Browser(url, path) for _ in range(3)]
        for reader in readers:
            await reader.open()
        until(lambda: figure(figures(url), "streams_open", "stream=x") == 3)
        publish(url, "x.metrics", 5)
        await all_received(readers, 5)
        status = figures_when(url, "events_delivered", 15)
        assert figure(status, "events_published", "stream=x") == 5
        assert figure(status, "events_delivered", "stream=x") == 15
        latency = status["latency"]
        assert isinstance(latency, dict) and latency["count"] >= 5, latency

        # A reconnect with its last id is a replay; an id the log cannot place gets a reset.
        resumed = Browser(url, path, last_event_id=readers[0].last_id)
        await resumed.open()
        stranger = Browser(url, path, last_event_id="not-an-id")
        await stranger.open()
        status = figures_when(url, "resets", 1)
        assert figure(status, "replays") >= 1
        assert figure(status, "resets", "reason=unknown") == 1
        for browser in [*readers, resumed, stranger]:
            await browser.close()
        # In a thread: the loop must run to send the closes.
        await asyncio.to_thread(until, lambda: figure(figures(url), "streams_open") == 0)

        # A client that stops reading falls SUBSCRIBER_QUEUE (50 here) events behind.
        frozen = frozen_socket(url, "/test/rel/stream/frozen", version="1.0")
        frozen.recv(4096)
        until(lambda: figure(figures(url), "streams_open") == 1)
        for batch in range(8):
            publish(url, "x.frozen", 100, seq=batch * 100, pad=20_000)
            if figure(figures(url), "subscribers_dropped", "reason=lagging"):
                break
        assert figure(figures(url), "subscribers_dropped", "reason=lagging") == 1
        frozen.close()

    asyncio.run(scenario())


def test_two_processes_add_up_in_the_multiprocess_directory(
    start: StartServer, tmp_path: Path
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        "DJANGO_SSE_METRICS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        # Small enough that a reader of 30 events of 2 kB reaches it.
        "DJANGO_SSE_SUBSCRIBER_MAX_BYTES": "40000",
    }
    servers = [start("daphne", env=env), start("daphne", env=env)]
    path = "/test/rel/stream/multi"

    async def scenario() -> None:
        # Two streams on the first process, one on the second.
        browsers = [Browser(servers[0].url, path) for _ in range(2)] + [
            Browser(servers[1].url, path)
        ]
        for browser in browsers:
            await browser.open()
        # Each process's endpoint shows the deployment: both processes' figures, added up.
        for server in servers:
            figures_when(server.url, "streams_open", 3, "stream=x")
        publish(servers[0].url, "x.multi", 4)
        publish(servers[1].url, "x.multi", 6)
        await all_received(browsers[:2], 4)
        await all_received(browsers[2:], 6)
        status = figures_when(servers[1].url, "events_delivered", 2 * 4 + 6)
        assert figure(status, "events_published") == 10
        assert figure(status, "events_delivered") == 14

        # The byte limit ends the second process's reader, which comes back with its last id.
        publish(servers[1].url, "x.multi", 30, seq=6, pad=2000)
        # In threads: the loop must run for the reader to reconnect.
        await asyncio.to_thread(
            figures_when, servers[0].url, "subscribers_dropped", 1, "reason=byte_limit"
        )
        await asyncio.to_thread(figures_when, servers[0].url, "replays", 1)
        await asyncio.to_thread(
            until, lambda: figure(figures(servers[0].url), "streams_open", "stream=x") == 3
        )

        # sse_status reads the same directory, from a process of its own.
        out = manage("sse_status", "--json", env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
        printed = json.loads(out)
        assert figure(printed, "events_published") == 10 + 30
        assert figure(printed, "subscribers_dropped", "reason=byte_limit") == 1
        assert figure(printed, "streams_open", "stream=x") == 3
        assert figure(printed, "replays") == 1
        table = manage("sse_status", env={"PROMETHEUS_MULTIPROC_DIR": str(directory)})
        assert "streams open" in table and "publish-to-write" in table, table
        for browser in browsers:
            await browser.close()

    asyncio.run(scenario())
