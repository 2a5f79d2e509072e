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
from tests.support.raw_client import Browser, all_received, frozen_socket, stats
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


def sse_status(*args: str) -> str:
    return manage("sse_status", *args)


def line_of(table: str, title: str) -> str:
    [line] = [row for row in table.splitlines() if row.startswith(title)]
    return line


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_sse_status_url_reads_a_running_server_with_open_streams(
    start: StartServer, kind: str
) -> None:
    server = start(kind, env={"DJANGO_SSE_METRICS": "1"})
    url, path = server.url, "/test/rel/stream/status"

    async def scenario() -> None:
        readers = [Browser(url, path) for _ in range(3)]
        for reader in readers:
            await reader.open()
        await asyncio.to_thread(figures_when, url, "streams_open", 3, "stream=x")
        publish(url, "x.status", 4)
        await all_received(readers, 4)
        await asyncio.to_thread(figures_when, url, "events_delivered", 12)

        # In a process of its own, as an operator runs it, while the streams are open.
        printed = json.loads(
            await asyncio.to_thread(sse_status, "--url", url + "/test/metrics", "--json")
        )
        assert figure(printed, "streams_open", "stream=x") == 3
        assert figure(printed, "events_published", "stream=x") == 4
        assert figure(printed, "events_delivered", "stream=x") == 12
        assert figure(printed, "subscribers_dropped") == 0
        print("publish-to-write:", printed["latency"])
        assert printed["latency"]["count"] == 4  # one per event, not per subscriber
        table = await asyncio.to_thread(sse_status, "--url", url + "/test/metrics")
        assert line_of(table, "streams open").split() == ["streams", "open", "3", "(stream=x", "3)"]
        assert line_of(table, "events delivered").split()[:3] == ["events", "delivered", "12"]
        assert line_of(table, "publish-to-write").split()[:3] == [
            "publish-to-write",
            "4",
            "events",
        ]
        for reader in readers:
            await reader.close()

    asyncio.run(scenario())


def test_the_process_budget_drop_is_counted_in_the_metrics_and_sse_status(
    start: StartServer,
) -> None:
    """A client that stops reading, on Daphne (which never blocks a write): the budget ends it.

    ``PROCESS_MAX_BYTES`` bounds what every stream of the process has written; the frozen
    stream is the one that wrote the most, so it is the one ended, and counted once.
    """
    env = {
        "DJANGO_SSE_METRICS": "1",
        "DJANGO_SSE_PROCESS_MAX_BYTES": "500000",
        "DJANGO_SSE_SUBSCRIBER_MAX_BYTES": "0",  # off: the budget, not the per-stream limit
    }
    server = start("daphne", env=env)
    url = server.url

    async def scenario() -> None:
        readers = [Browser(url, "/test/rel/stream/quiet") for _ in range(2)]
        for reader in readers:
            await reader.open()
        frozen = frozen_socket(url, "/test/rel/stream/budget")
        frozen.recv(4096)  # the head and ": open", then nothing
        await asyncio.to_thread(figures_when, url, "streams_open", 3, "stream=x")
        for batch in range(20):  # 200 kB a batch: the budget is reached by the third
            publish(url, "x.budget", 10, seq=batch * 10, pad=20_000)
            if stats(url)["budget"]["ended"]:  # type: ignore[index]
                break
        assert stats(url)["budget"]["ended"] == 1  # type: ignore[index]
        status = await asyncio.to_thread(
            figures_when, url, "subscribers_dropped", 1, "reason=process_budget"
        )
        assert figure(status, "subscribers_dropped") == 1
        # The readers, which wrote next to nothing, are still open; the frozen stream is gone.
        await asyncio.to_thread(
            until, lambda: figure(figures(url), "streams_open", "stream=x") == 2
        )
        printed = json.loads(
            await asyncio.to_thread(sse_status, "--url", url + "/test/metrics", "--json")
        )
        assert figure(printed, "subscribers_dropped", "reason=process_budget") == 1
        assert figure(printed, "subscribers_dropped") == 1
        assert figure(printed, "streams_open", "stream=x") == 2
        table = await asyncio.to_thread(sse_status, "--url", url + "/test/metrics")
        dropped = line_of(table, "subscribers dropped")
        assert dropped.split()[:3] == ["subscribers", "dropped", "1"], dropped
        assert "reason=process_budget 1" in dropped, dropped
        frozen.close()
        for reader in readers:
            await reader.close()

    asyncio.run(scenario())
