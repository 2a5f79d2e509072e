"""Combined feeds on real Daphne processes sharing Redis (channel layer and replay log).

Clients are raw sockets that behave like ``EventSource``
(tests/scenarios/test_concurrent_publishers.py):
they follow three feeds on one connection, some drop it every few dozen events and reconnect,
to either server, with the last id they saw, while publisher processes publish to every group.
Each group must arrive exactly once and in its order (its sequence is read from the cursor of
each id). A stale position of one group resets that group alone; a refused feed refuses the
stream; and no id, whatever its bytes, gets anything but a 200 with the URL's own groups.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_sse.live.cursor import decode, group_hash
from tests.conftest import StartServer
from tests.scenarios.test_concurrent_publishers import Client, environment, publishers, wait_all
from tests.support.raw_client import address, read_until
from tests.support.servers import ServerProcess
from tests.support.waiting import until_async as until

pytestmark = pytest.mark.server

PARTS = ("a", "b", "c")
DATA = re.compile(rb"^data: ?(.*)$", re.M)
ID = re.compile(rb"^id: ?(.*)$", re.M)
EVENT = re.compile(rb"^event: ?(.*)$", re.M)


def combined_path(name: str, parts: tuple[str, ...] = PARTS) -> str:
    """Feed i follows group ``fd.<name>.<parts[i]>`` (tests/support/feed_views.py)."""
    first, *others = [f"/test/feeds/one/{name}/{part}" for part in parts]
    return first + "?" + "&".join("feed=" + quote(other, safe="") for other in others)


def group_of(event_id: str, groups: list[str]) -> tuple[str, int]:
    """The group an event came from (its feed index) and its sequence (from the cursor)."""
    feeds, _, cursor = event_id.partition(":")
    group = groups[int(feeds)]
    positions = decode(cursor)
    assert positions is not None, event_id
    return group, positions[group_hash(group)][1]


class FeedsClient(Client):
    """A ``Client`` of a combined stream: sequences and resets per group."""

    def __init__(self, urls: list[str], path: str, groups: list[str], **options: object) -> None:
        super().__init__(urls, path, **options)  # type: ignore[arg-type]
        self.groups = groups

    def per_group(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {group: [] for group in self.groups}
        for kind, event_id in self.events:
            if kind != "reset":
                group, sequence = group_of(event_id, self.groups)
                found[group].append(sequence)
        return found

    def resets(self) -> int:
        return sum(kind == "reset" for kind, _ in self.events)


async def until_each_group(clients: list[FeedsClient], total: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(min(map(len, c.per_group().values())) >= total or c.resets() for c in clients):
            return
        await asyncio.sleep(0.1)


def test_clients_of_three_feeds_reconnecting_get_every_event_of_each_group_once_in_order(
    start: StartServer, redis_url: str
) -> None:
    total = 600  # per group
    env = environment(redis_url, DJANGO_SSE_REPLAY_WINDOW=str(2 * total))
    servers = [start("daphne", env=env) for _ in range(2)]
    urls = [server.url for server in servers]
    groups = [f"fd.many.{part}" for part in PARTS]
    path = combined_path("many")

    async def scenario() -> list[FeedsClient]:
        live = [FeedsClient([url], path, groups) for url in urls]
        flaky = [FeedsClient(urls, path, groups, reconnect_every=40, seed=n) for n in range(3)]
        for client in live + flaky:
            await client.open()
        running = publishers(env, ",".join(groups), total, processes=2, coroutines=3)
        await asyncio.to_thread(wait_all, running)
        await until_each_group(live + flaky, total, limit=90)
        for client in live + flaky:
            await client.close()
        return live + flaky

    clients = asyncio.run(scenario())
    print(f"\nreconnects {[c.reconnects for c in clients]}")
    assert sum(c.reconnects for c in clients[2:]) >= 20  # the flaky ones really reconnected
    for client in clients:
        assert client.resets() == 0
        sequences = client.per_group()
        for group in groups:
            assert sequences[group] == list(range(1, total + 1)), group
        assert len(client.data) == 3 * total


def test_a_stale_position_resets_that_group_and_the_others_replay(
    start: StartServer, redis_url: str
) -> None:
    env = environment(redis_url, DJANGO_SSE_REPLAY_WINDOW="50")
    server = start("daphne", env=env)
    groups = [f"fd.stale.{part}" for part in PARTS]
    path = combined_path("stale")

    def publish(group: str, data: object) -> None:
        query = {"group": group, "data": json.dumps(data)}
        httpx.get(server.url + "/test/ord/publish", params=query, timeout=60).raise_for_status()

    async def scenario() -> FeedsClient:
        first = FeedsClient([server.url], path, groups)
        await first.open()
        for group in groups:
            publish(group, {"g": group, "n": 0})
        await until_each_group([first], 1, limit=30)
        await first.close()
        last_id = first.last_id
        # Away: group a moves on by four windows, b by three events, c not at all.
        wait_all(publishers(env, groups[0], 200, processes=1, coroutines=2))
        for n in range(1, 4):
            publish(groups[1], {"g": groups[1], "n": n})
        second = FeedsClient([server.url], path, groups, last_event_id=last_id)
        await second.open()
        await until(lambda: second.resets() >= 1 and len(second.data) >= 3, within=60)
        publish(groups[2], {"g": groups[2], "n": 1})  # c goes on live
        await until(lambda: len(second.data) >= 4, within=60)
        await second.close()
        return second

    second = asyncio.run(scenario())
    resets = [event_id for kind, event_id in second.events if kind == "reset"]
    assert [event_id.split(":")[0] for event_id in resets] == ["0"]  # group a, alone
    assert second.per_group() == {groups[0]: [], groups[1]: [2, 3, 4], groups[2]: [2]}
    assert [json.loads(d)["n"] for d in second.data] == [1, 2, 3, 1]


def status_of(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> int:
    with httpx.stream("GET", server.url + path, headers=headers, timeout=60) as response:
        return response.status_code


def test_a_refused_feed_refuses_the_whole_stream(start: StartServer, redis_url: str) -> None:
    server = start("daphne", env=environment(redis_url))
    first = "/test/feeds/one/refused/a"
    assert status_of(server, first + "?feed=" + quote("/test/feeds/denied/refused")) == 403
    assert status_of(server, first + "?feed=" + quote("/test/feeds/login/refused")) == 401
    assert status_of(server, first + "?feed=" + quote("/test/health")) == 400
    assert status_of(server, first + "?feed=" + quote("/test/feeds/one/refused/b")) == 200


# --- any bytes as an id ------------------------------------------------------------------

FUZZ_GROUPS = [f"fd.fuzz.{part}" for part in ("a", "b")]
OUTSIDER = "fd.fuzz.c"  # has events too, but no URL below names it


def http_publish(server: ServerProcess, group: str, data: object) -> str:
    query = {"group": group, "data": json.dumps(data)}
    response = httpx.get(server.url + "/test/ord/publish", params=query, timeout=60)
    response.raise_for_status()
    event_id: str = response.json()["id"]
    return event_id


async def fuzz_once(server: ServerProcess, raw: bytes, in_header: bool, marker: int) -> None:
    path = combined_path("fuzz", ("a", "b"))
    headers = b""
    if in_header:
        # HTTP allows no control character but HTAB in a header value, and Daphne (Twisted)
        # also answered 400 to a value holding 0x85 (seen in a CI run) before the application
        # ran. So the header carries visible ASCII only; the other bytes go in the query
        # parameter (the other half of the examples).
        raw = bytes(b for b in raw if 0x20 <= b < 0x7F or b == 0x09)
        headers = b"Last-Event-ID: " + raw + b"\r\n"
    else:
        path += "&lastEventId=" + quote(raw, safe="")
    host, port = address(server.url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n".encode()
            + headers
            + b"\r\n"
        )
        head = await read_until(reader, b"\r\n\r\n", limit=60)
        assert head.split(b"\r\n", 1)[0].endswith(b" 200 OK"), head[:200]
        buffer = head.split(b"\r\n\r\n", 1)[1]
        await asyncio.to_thread(http_publish, server, FUZZ_GROUPS[0], {"m": marker})
        await asyncio.to_thread(http_publish, server, FUZZ_GROUPS[1], {"m": marker})
        seen: set[int] = set()
        async with asyncio.timeout(60):
            while True:
                *blocks, rest = buffer.split(b"\n\n")
                for block in blocks:
                    data = DATA.search(block)
                    event_id = ID.search(block)
                    if data is None:
                        continue
                    assert event_id is not None, block
                    feeds = event_id[1].decode().partition(":")[0]
                    assert feeds in ("0", "1"), block  # only the URL's two feeds
                    kind = EVENT.search(block)
                    if kind is not None and kind[1] == b"reset":
                        continue
                    value = json.loads(data[1])
                    assert value.get("g") != OUTSIDER, block
                    if value.get("m") == marker:
                        seen.add(int(feeds))
                if seen == {0, 1}:
                    return
                buffer = rest
                chunk = await reader.read(65536)
                assert chunk, f"the stream ended: {buffer[:300]!r}"
                buffer += chunk
    finally:
        writer.close()


def id_bytes(real: list[bytes]) -> st.SearchStrategy[bytes]:
    """Anything a header may carry (no CR/LF: they would end it), real ids and their mutants."""
    anything = st.binary(max_size=1100).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:,"
    cursorish = st.text(alphabet=alphabet, max_size=200).map(lambda t: ("0:1p" + t).encode())
    mutated = st.tuples(st.sampled_from(real), st.integers(0, 10**6), st.integers(1, 255)).map(
        lambda m: mutate(*m)
    )
    return st.one_of(anything, cursorish, st.sampled_from(real), mutated)


def mutate(event_id: bytes, where: int, by: int) -> bytes:
    """``event_id`` with one byte changed (CR and LF excepted)."""
    index = where % len(event_id)
    byte = (event_id[index] + by) % 256
    if byte in (10, 13):
        byte = 65
    return event_id[:index] + bytes([byte]) + event_id[index + 1 :]


def test_any_bytes_as_a_multi_group_id_get_a_200_with_the_urls_groups_only(
    start: StartServer, redis_url: str
) -> None:
    server = start("daphne", env=environment(redis_url))
    # Real ids, of a stream that also names the outsider: a cursor that positions it.
    first, *others = [f"/test/feeds/one/fuzz/{part}" for part in ("a", "b", "c")]
    wide = first + "?" + "&".join("feed=" + quote(other, safe="") for other in others)
    real: list[bytes] = []
    with httpx.stream("GET", server.url + wide, timeout=60) as response:
        # Events in every group, the outsider too, so that a wrongly positioned group replays.
        for n in range(3):
            for group in [*FUZZ_GROUPS, OUTSIDER]:
                http_publish(server, group, {"g": group, "n": n})
        for line in response.iter_lines():
            if line.startswith("id: "):
                real.append(line[4:].encode())
            if len(real) == 9:
                break
    real.append(real[0].split(b":")[1])  # a bare cursor
    for n in range(3):
        http_publish(server, OUTSIDER, {"g": OUTSIDER, "n": 10 + n})
    markers = iter(range(10**9))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(raw=id_bytes(real), in_header=st.booleans())
    def check(raw: bytes, in_header: bool) -> None:
        asyncio.run(fuzz_once(server, raw, in_header, next(markers)))

    check()
