"""Several publishers, several servers, hostile reconnects: every event once, in order, or a reset.

Two Daphne servers share Redis (channel layer and replay log). Publishers are separate
processes (``tests/support/publisher.py``), each publishing from several coroutines at once, as web
workers and task queues do. Clients are raw sockets that behave like ``EventSource``: some read
live, some drop their connection every few dozen events and reconnect, to either server, with
the last id they saw. What must hold (Guarantees in the README): each client sees every event
of the group exactly once, in the group's id order, or a ``reset`` that tells it what it lost;
never a silent gap, a duplicate or an inversion.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.raw_client import ID, Browser, address, request
from tests.support.servers import ROOT, server_env
from tests.support.waiting import until_async

pytestmark = pytest.mark.server

PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
CORE = "channels_redis.core.RedisChannelLayer"
EVENT = re.compile(rb"^event: ?(.*)$", re.M)
DATA = re.compile(rb"^data: ?(.*)$", re.M)


def environment(redis_url: str, layer: str = PUBSUB, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_BACKEND": layer,
        "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:12],
        "DJANGO_SSE_PING_INTERVAL": "1",
        **extra,
    }


def publishers(
    env: dict[str, str],
    group: str,
    count: int,
    processes: int = 3,
    coroutines: int = 4,
    tag: str = "p",
) -> list[subprocess.Popen[bytes]]:
    """``processes`` publishing processes sharing ``count`` events between them."""
    share = count // processes
    return [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.support.publisher", group, str(share)),
                *("--coroutines", str(coroutines), "--tag", f"{tag}{n}"),
            ],
            cwd=ROOT,
            env=server_env(env),
            stdout=subprocess.PIPE,
        )
        for n in range(processes)
    ]


def wait_all(processes: list[subprocess.Popen[bytes]], limit: float = 60) -> list[str]:
    """Wait for the publishers; the ids their ``publish()`` calls returned."""
    ids: list[str] = []
    for process in processes:
        output, _ = process.communicate(timeout=limit)
        assert process.returncode == 0
        ids += output.decode().split()
    return ids


class Client(Browser):
    """An ``EventSource`` on a raw socket that records every event's id and type.

    With ``reconnect_every`` it drops its connection after about that many events (a flaky
    network) and reconnects to one of ``urls`` at random with ``Last-Event-ID``.
    """

    def __init__(
        self,
        urls: list[str],
        path: str,
        reconnect_every: int | None = None,
        last_event_id: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(urls[0], path, last_event_id)
        self.urls = urls
        self.reconnect_every = reconnect_every
        self.random = random.Random(seed)
        self.events: list[tuple[str, str]] = []  # (type, id)
        self.data: list[bytes] = []  # of the events that are not resets
        self.budget = 0

    async def connect(self) -> None:
        if self.reconnect_every:
            self.url = self.random.choice(self.urls)
            self.budget = self.random.randint(1, 2 * self.reconnect_every)
        await super().connect()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        for block in blocks:
            retry = re.search(rb"^retry: ?(\d+)$", block, re.M)
            if retry is not None:
                self.retry = int(retry[1]) / 1000
            event_id = ID.search(block)
            if event_id is not None:
                self.last_id = event_id[1].decode()
            payload = DATA.search(block)
            if payload is None:
                continue
            found = EVENT.search(block)
            kind = found[1].decode() if found else "message"
            self.events.append((kind, self.last_id or ""))
            if kind != "reset":
                self.data.append(payload[1])
            self.budget -= 1
        if self.reconnect_every and self.budget <= 0:
            self.writer.transport.abort()  # the next read fails: reconnect with the last id

    def sequences(self) -> list[int]:
        return [int(i.rsplit("-", 1)[1]) for kind, i in self.events if kind != "reset"]

    def tally(self, total: int) -> dict[str, int]:
        """What went wrong, by the events' payloads and ids (ids compared as id pairs)."""
        keys = [tuple(map(int, i.split("-"))) for kind, i in self.events if kind != "reset"]
        seqs = self.sequences()
        return {
            "inversions": sum(b < a for a, b in itertools.pairwise(keys)),
            "gaps": sum(b > a + 1 for a, b in itertools.pairwise(seqs)),
            "duplicates": len(self.data) - len(set(self.data)),
            "missed": total - len(set(self.data)),
            "resets": sum(kind == "reset" for kind, _ in self.events),
        }


async def until_received(clients: list[Client], total: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(len(set(c.data)) >= total or c.tally(total)["resets"] for c in clients):
            return
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("layer", [PUBSUB, CORE], ids=["pubsub", "core"])
def test_concurrent_publishers_in_three_processes_reach_every_client_once_in_order(
    start: StartServer, redis_url: str, layer: str
) -> None:
    total = 3000
    # A window that holds every event: a flaky client that waits out a long retry on a loaded
    # machine must not fall out of it, so any reset here is a real loss.
    env = environment(redis_url, layer, DJANGO_SSE_REPLAY_WINDOW=str(2 * total))
    servers = [start("daphne", env=env) for _ in range(2)]
    urls = [server.url for server in servers]
    path = "/test/ord/stream/many"

    async def scenario() -> list[Client]:
        live = [Client([url], path) for url in urls for _ in range(2)]
        flaky = [Client(urls, path, reconnect_every=60, seed=n) for n in range(4)]
        for client in live + flaky:
            await client.open()
        running = publishers(env, "ord.many", total)
        await asyncio.to_thread(wait_all, running)
        await until_received(live + flaky, total, limit=60)
        for client in live + flaky:
            await client.close()
        return live + flaky

    clients = asyncio.run(scenario())
    tallies = [client.tally(total) for client in clients]
    print(f"\n{layer}: {tallies}, reconnects {[c.reconnects for c in clients]}")
    assert sum(c.reconnects for c in clients[4:]) >= 20  # the flaky ones really reconnected
    for client, tally in zip(clients, tallies, strict=True):
        assert tally == {"inversions": 0, "gaps": 0, "duplicates": 0, "missed": 0, "resets": 0}
        assert client.sequences() == list(range(1, total + 1))


def test_an_event_whose_publisher_was_killed_after_logging_it_is_still_delivered(
    start: StartServer, redis_url: str
) -> None:
    env = environment(redis_url)
    servers = [start("daphne", env=env) for _ in range(2)]
    path = "/test/ord/stream/killed"

    def killed_publisher() -> str:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "tests.support.publisher", "ord.killed", "1"),
                *("--killed-after-log", "--tag", "killed"),
            ],
            cwd=ROOT,
            env=server_env(env),
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == -9  # SIGKILL, after the log write, before the live send
        return result.stdout.decode().strip()

    async def scenario() -> tuple[list[Client], str]:
        clients = [Client([server.url], path) for server in servers]
        for client in clients:
            await client.open()
        wait_all(publishers(env, "ord.killed", 5, processes=1, coroutines=1))
        lost = await asyncio.to_thread(killed_publisher)
        # No later event reveals the gap: the hubs' audit finds it in the log.
        await until_received(clients, 6, limit=30)
        wait_all(publishers(env, "ord.killed", 5, processes=1, coroutines=1, tag="later"))
        await until_received(clients, 11, limit=30)
        for client in clients:
            await client.close()
        return clients, lost

    clients, lost = asyncio.run(scenario())
    for client in clients:
        assert b'{"tag":"killed-0"}' in client.data  # the event the killed publisher logged
        assert len(client.data) == len(set(client.data)) == 11
        assert client.sequences() == list(range(1, 12))
        assert ("message", lost) in client.events


def key(event_id: str) -> tuple[int, int]:
    first, second = event_id.split("-")
    return int(first), int(second)


def test_resuming_from_the_oldest_id_while_publishers_trim_gets_resets_never_gaps(
    start: StartServer, redis_url: str
) -> None:
    env = environment(redis_url, DJANGO_SSE_REPLAY_WINDOW="50")
    server = start("daphne", env=env)
    path = "/test/ord/stream/trim"
    total = 3000

    async def resume(oldest: str) -> list[tuple[str, str]]:
        client = Client([server.url], path, last_event_id=oldest)
        await client.connect()
        deadline = time.monotonic() + 0.3
        try:
            while time.monotonic() < deadline:
                chunk = await asyncio.wait_for(client.reader.read(65536), 1)
                if not chunk:
                    break
                client.feed(chunk)
        except TimeoutError:
            pass
        client.writer.close()
        return client.events

    async def scenario() -> tuple[list[list[tuple[str, str]]], list[str], str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            first = await http.get("/test/rel/publish", params={"group": "ord.trim"})
        oldest: str = first.json()["ids"][0]
        running = publishers(env, "ord.trim", total, processes=3, coroutines=2)
        results: list[list[tuple[str, str]]] = []
        # Rounds of 10 resumes while the publishers trim the window, and at least 5 rounds in
        # all: on a fast machine the publishers may be done after the first.
        while any(p.poll() is None for p in running) or len(results) < 50:
            results += await asyncio.gather(*(resume(oldest) for _ in range(10)))
        return results, await asyncio.to_thread(wait_all, running), oldest

    results, published, oldest = asyncio.run(scenario())
    # The group's order, whatever the ids' form: the log's, by id.
    order = sorted([key(oldest), *map(key, published)])
    assert len(set(order)) == total + 1
    index = {each: n for n, each in enumerate(order)}
    silent = skipped = resets = inversions = 0
    for events in results:
        resets += any(kind == "reset" for kind, _ in events)
        # A reset (at the start: the id left the window; later: events lost live and trimmed
        # from the log before they could be read back) tells the client what it lost; between
        # resets, every event must be there, from right after the id on.
        segments: list[list[int]] = [[]]
        for kind, event_id in events:
            if kind == "reset":
                segments.append([])
            else:
                segments[-1].append(index[key(event_id)])
        missing = 0
        for number, keys in enumerate(segments):
            if keys:
                expected = range(1 if number == 0 else min(keys), max(keys) + 1)
                missing += len(set(expected) - set(keys))
                inversions += sum(b < a for a, b in itertools.pairwise(keys))
        silent += missing > 0
        skipped += missing
    print(
        f"\n{len(results)} resumes: {resets} with resets, {silent} with silent gaps "
        f"({skipped} events skipped), {inversions} inversions"
    )
    assert (silent, skipped, inversions) == (0, 0, 0)
    assert resets >= len(results) // 2  # the oldest id falls out of the 50-event window


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_frozen_clients_resuming_from_an_old_id_cost_bounded_memory(
    start: StartServer, redis_url: str, backend: str
) -> None:
    env = environment(redis_url) if backend == "redis" else {"DJANGO_SSE_PING_INTERVAL": "1"}
    server = start("daphne", env=env)
    pid = server.process.pid
    path = "/test/ord/stream/frozen"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        ids: list[str] = []
        for seq in range(0, 1000, 100):  # 1,000 events of 64 KB: the whole window
            response = http.get(
                "/test/rel/publish",
                params={"group": "ord.frozen", "n": 100, "seq": seq, "pad": 64 * 1024},
            )
            ids += response.json()["ids"]
        http.get("/test/rel/stats", params={"gc": 1})
    before = rss_kib(pid)
    # Ten clients resume from the oldest id (every event of the window is to be replayed to
    # each of them) and never read.
    frozen = []
    for _ in range(10):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(address(server.url))
        sock.sendall(request(path, {"Last-Event-ID": ids[0]}))
        frozen.append(sock)
    peak = before
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.05)  # RSS sampled over ten seconds: the measurement window
    growth_mib = (peak - before) / 1024
    print(f"\n{backend}: RSS {before // 1024} -> {peak // 1024} MiB with 10 frozen resumes")
    assert "Traceback" not in server.log()
    for sock in frozen:
        sock.close()
    # Before: about 61 MiB per connection (the whole window in one write). Now: what
    # SUBSCRIBER_MAX_BYTES (4 MiB) lets Daphne buffer, plus one page being written.
    assert growth_mib < 10 * 16


def test_a_hundred_concurrent_resumes_from_redis_all_complete(
    start: StartServer, redis_url: str
) -> None:
    env = environment(redis_url, DJANGO_SSE_PING_INTERVAL="5")
    server = start("daphne", env=env)
    path = "/test/ord/stream/storm"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        ids: list[str] = []
        for seq in range(0, 1000, 100):
            response = http.get(
                "/test/rel/publish",
                params={"group": "ord.storm", "n": 100, "seq": seq, "pad": 2048},
            )
            ids += response.json()["ids"]

    async def scenario() -> list[Client]:
        clients = [Client([server.url], path, last_event_id=ids[0]) for _ in range(100)]
        await asyncio.gather(*(client.open() for client in clients))
        await until_async(lambda: all(len(c.events) >= 999 for c in clients), within=60)
        for client in clients:
            await client.close()
        return clients

    clients = asyncio.run(scenario())
    complete = sum(c.sequences() == list(range(2, 1001)) for c in clients)
    failed = sum(c.reconnects for c in clients)
    print(f"\n100 concurrent resumes: {complete} complete, {failed} reconnects after failures")
    assert "Timeout" not in server.log()
    assert complete == 100


def test_a_filter_that_raises_skips_the_event_and_the_stream_goes_on(
    start: StartServer, redis_url: str
) -> None:
    env = environment(redis_url)
    server = start("daphne", env=env)
    publish_url = server.url + "/test/ord/publish"

    def publish(**data: object) -> str:
        response = httpx.get(
            publish_url, params={"group": "ord.strict", "data": json.dumps(data)}, timeout=20
        )
        response.raise_for_status()
        event_id: str = response.json()["id"]
        return event_id

    async def scenario() -> tuple[Client, Client]:
        first = await asyncio.to_thread(publish, keep=True, n=0)
        await asyncio.to_thread(publish, n=1)  # no "keep": the filter raises
        await asyncio.to_thread(publish, keep=True, n=2)
        resumed = Client([server.url], "/test/ord/strict/strict", last_event_id=first)
        live = Client([server.url], "/test/ord/strict/strict")
        await resumed.open()
        await live.open()
        await asyncio.to_thread(publish, n=3)
        await asyncio.to_thread(publish, keep=True, n=4)
        await until_async(lambda: len(resumed.events) >= 2 and bool(live.events), within=20)
        await resumed.close()
        await live.close()
        return resumed, live

    resumed, live = asyncio.run(scenario())
    assert resumed.data == [b'{"keep":true,"n":2}', b'{"keep":true,"n":4}']
    assert live.data == [b'{"keep":true,"n":4}']
    assert resumed.reconnects == live.reconnects == 0
    assert server.log().count("ERROR    An event filter of ord.strict failed") == 2  # once each
