"""Bad input: hostile or broken paths, query strings and headers never get a 500 or a stream of
a group the request did not ask for.

In-process, hypothesis drives Django's real ASGI handler with raw ASGI scopes (so CR, LF, NUL
and non-UTF-8 bytes reach Django exactly as a lenient server would pass them), and checks the
hub's groups while each stream is open and after it closed. Then a bounded run of raw bytes over
sockets against a real Daphne and a real uvicorn, whose own HTTP parsers come first.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote_from_bytes, unquote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_project.items.models import Item
from django_sse.live.groups import validate_group
from django_sse.live.hub import get_hub
from tests.conftest import StartServer
from tests.support.asgi import application
from tests.support.raw_client import address
from tests.support.waiting import until_async

# Every status a refusal may have; 5xx is never one of them.
REFUSALS = {400, 401, 403, 404, 405, 431}

# Hostile building blocks, mixed with random bytes by the strategies below.
NASTY = [
    b"",
    b"\r\n",
    b"\r",
    b"\n",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",  # invalid UTF-8
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"%00",
    b"%0d%0a",
    b"%ff",
    b"..",
    b"/",
    b"x" * 5000,
    "é".encode(),
    b"1-1",
    b"99999999999999999999999999-1",
    b"-1",
    b"0-0",
]
raw_bytes = st.one_of(
    st.sampled_from(NASTY),
    st.binary(max_size=200),
    st.lists(st.sampled_from(NASTY), max_size=4).map(b"".join),
)


# Stands for the pk of an item that exists, in the object-id strategy.
EXISTING = "<an existing item>"


def expected_group(prefix: str, name: str) -> str | None:
    """The group a URL asks for, or ``None`` when it names no valid one (a URL value is one
    segment of a group name: no ``.``)."""
    if "." in name:
        return None
    try:
        return validate_group(prefix + name)
    except ValueError:
        return None


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One loop (so one hub) for every example: the hub is checked between requests.
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


async def call(
    path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, dict[str, int]]:
    """One request through Django's ASGI handler; the status and the hub's groups while the
    response was open. The client disconnects after the first body chunk of a stream, and the
    hub must be empty once the handler returned."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    requested = False
    gone = asyncio.Event()
    status = 0
    groups: dict[str, int] = {}

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status, groups
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not gone.is_set():
            groups = get_hub().groups()
            gone.set()

    await asyncio.wait_for(application(scope, receive, send), 10)
    # The stream's subscription leaves with it, at once.
    assert get_hub().groups() == {}
    return status, groups


def utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def check(status: int, groups: dict[str, int], group: str | None) -> None:
    if group is None:
        assert status in REFUSALS, status
        assert groups == {}
    else:
        assert status == 200, status
        assert groups == {group: 1}


fuzz = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.django_db(transaction=True)
@fuzz
@given(name=st.text(max_size=150), last_event_id=raw_bytes, cookie=raw_bytes)
def test_group_names_from_the_url(
    loop: asyncio.AbstractEventLoop, name: str, last_event_id: bytes, cookie: bytes
) -> None:
    headers = [(b"last-event-id", last_event_id), (b"cookie", cookie)]
    status, groups = loop.run_until_complete(call("/test/live/open/" + name, b"", headers))
    if "/" in name or not name:
        assert status == 404 and groups == {}
    else:
        check(status, groups, expected_group("x.", name))


@pytest.mark.django_db(transaction=True)
@fuzz
@given(
    pk=st.one_of(
        st.just(EXISTING),
        st.integers(min_value=0, max_value=10**120).map(str),
        st.text(max_size=40),
    )
)
def test_object_ids_from_the_url(loop: asyncio.AbstractEventLoop, pk: str) -> None:
    item = Item.objects.get_or_create(name="fuzzed", defaults={"price": 1})[0]
    pk = str(item.pk) if pk == EXISTING else pk
    status, groups = loop.run_until_complete(call(f"/items/{pk}/live"))
    numeric = pk.isascii() and pk.isdigit()
    if numeric and int(pk) == item.pk:
        check(status, groups, expected_group("items.item.", str(item.pk)))
    elif numeric and expected_group("items.item.", str(int(pk))) is None:
        check(status, groups, None)  # too long for a group name: refused before any lookup
    else:
        # A path that is no id, or an id of no item: 404 (the demo checks the item exists).
        assert status == 404 and groups == {}


@pytest.mark.django_db(transaction=True)
@fuzz
@given(
    query=st.one_of(
        raw_bytes,
        raw_bytes.map(lambda value: b"lastEventId=" + value),
        raw_bytes.map(lambda value: b"lastEventId=" + quote_from_bytes(value).encode()),
    ),
    header=raw_bytes,
    accept=raw_bytes,
)
def test_last_event_ids_and_query_strings(
    loop: asyncio.AbstractEventLoop, query: bytes, header: bytes, accept: bytes
) -> None:
    headers = [(b"last-event-id", header), (b"accept", accept)]
    for path, group in [("/items/live", "items.item"), ("/test/live/open/q", "x.q")]:
        status, groups = loop.run_until_complete(call(path, query, headers))
        # A query string that is not UTF-8 gets Django's own 400: a refusal, never a 500.
        check(status, groups, group if utf8(query) else None)


@pytest.mark.django_db(transaction=True)
@fuzz
@given(cookie=raw_bytes, query=raw_bytes)
def test_anonymous_garbage_is_refused_before_any_event(
    loop: asyncio.AbstractEventLoop, cookie: bytes, query: bytes
) -> None:
    headers = [(b"cookie", b"sessionid=" + cookie)]
    refusal = 401 if utf8(query) else 400  # non-UTF-8 query strings: Django's own 400
    for path in ["/test/live/login/item", "/test/live/perm", "/test/acc/mine"]:
        status, groups = loop.run_until_complete(call(path, query, headers))
        assert status == refusal and groups == {}


# --- raw bytes over sockets, against real servers -----------------------------------------

RAW_REQUESTS = 150


def raw_requests(seed: int) -> Iterator[tuple[bytes, str | None]]:
    """Raw requests and the group each may subscribe to (``None``: it must not stream)."""
    rng = random.Random(seed)

    def nasty() -> bytes:
        if rng.random() < 0.5:
            return rng.choice(NASTY)
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))

    huge = b"7" * 70_000  # past every server's header limit
    yield b"GET /test/live/open/raw HTTP/1.1\r\nLast-Event-ID: " + huge + b"\r\n\r\n", "x.raw"
    yield b"GET /test/live/open/" + huge + b" HTTP/1.1\r\nHost: a\r\n\r\n", None
    for n in range(RAW_REQUESTS - 2):
        kind = n % 3
        if kind == 0:  # a hostile Last-Event-ID header on a valid stream
            head = b"GET /test/live/open/raw HTTP/1.1\r\nLast-Event-ID: " + nasty()
            yield head + b"\r\nHost: a\r\n\r\n", "x.raw"
        elif kind == 1:  # a hostile lastEventId parameter, raw or percent-encoded
            value = nasty()
            if rng.random() < 0.5:
                value = quote_from_bytes(value).encode()
            head = b"GET /test/live/open/raw?lastEventId=" + value + b" HTTP/1.1\r\n"
            yield head + b"Host: a\r\n\r\n", "x.raw"
        else:  # a hostile group name: percent-encoded bytes, or raw ones
            segment = nasty()
            if rng.random() < 0.7:
                segment = quote_from_bytes(segment, safe="").encode()
            yield (
                b"GET /test/live/open/" + segment + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                (asked_group(segment)),
            )


def asked_group(segment: bytes) -> str | None:
    """The group a raw path segment names, as a server would decode it (``None``: no valid one:
    whatever is not ASCII once percent-decoded can never be a group name)."""
    part = segment.split(b"?", 1)[0].split(b"#", 1)[0]
    try:
        text = unquote(part.decode("ascii"), errors="strict")
    except UnicodeDecodeError:
        return None
    return expected_group("x.", text) if text else None


async def send_raw(url: str, payload: bytes) -> tuple[int | None, dict[str, int]]:
    """Send ``payload``; the status (``None``: closed without one) and the hub's groups while
    the connection was still open."""
    host, port = address(url)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        head = b""
        async with asyncio.timeout(10):
            while b"\r\n\r\n" not in head:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                head += chunk
        if not head.startswith(b"HTTP/1."):
            return None, {}
        status = int(head.split(b" ", 2)[1])
        async with httpx.AsyncClient() as client:
            hub = (await client.get(url + "/test/live/hub", timeout=10)).json()
        return status, hub["groups"]
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_raw_bytes_against_a_real_server(start: StartServer, kind: str) -> None:
    server = start(kind, env={"DJANGO_SSE_PING_INTERVAL": "5"})

    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        for payload, group in raw_requests(seed=6):
            status, groups = await send_raw(server.url, payload)
            counts[str(status)] = counts.get(str(status), 0) + 1
            assert status is None or status < 500, (payload[:200], status)
            if status == 200:
                assert group is not None and groups == {group: 1}, (payload[:200], groups)
            else:
                assert status is None or status in REFUSALS, (payload[:200], status)
                assert groups == {}, (payload[:200], groups)
            # The stream we just closed leaves the hub (in the background on Daphne).
            async with httpx.AsyncClient(timeout=30) as client:

                async def left() -> bool:
                    groups = (await client.get(server.url + "/test/live/hub")).json()["groups"]
                    return not groups

                await until_async(left)
        return counts

    counts = asyncio.run(run())
    print(f"\n{kind}: {RAW_REQUESTS} raw requests, statuses {counts}")
    assert counts.get("200", 0) > 0  # the run did reach the view, not only the parser
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
