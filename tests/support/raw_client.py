"""Raw-socket HTTP/1.1 clients: cheap enough for a thousand streams or thousands of cycles.

An httpx client per connection costs more than the server it measures; these speak just enough
HTTP (a request, the response head, chunked bodies) to read an event stream. Every read is
bounded by a deadline.

- ``RawStream``: one connection, read on demand and parsed with the spec-exact parser.
- ``Browser``: what an ``EventSource`` does, reconnecting with ``Last-Event-ID`` by itself.
- ``frozen_socket``: a client that never reads.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import time
from urllib.parse import urlsplit

import httpx

from tests.support.sse_parser import Event, parse
from tests.support.waiting import until_async

# SO_LINGER with a zero timeout: close() sends RST, as a client whose network vanished would.
LINGER_RST = struct.pack("ii", 1, 0)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def request(path: str, headers: dict[str, str] | None = None, version: str = "1.1") -> bytes:
    """A GET; HTTP/1.0 makes both servers send the body unchunked, so it parses as is."""
    lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_until(reader: asyncio.StreamReader, marker: bytes, limit: float) -> bytes:
    """Read until ``marker`` has arrived; everything read so far is returned."""
    buffer = b""

    async def read() -> bytes:
        nonlocal buffer
        while marker not in buffer:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}; got {buffer[:300]!r}")
            buffer += chunk
        return buffer

    return await asyncio.wait_for(read(), limit)


def stats(url: str, collect: bool = False) -> dict[str, object]:
    """The server's ``/test/rel/stats`` (see tests/support/reliability_views.py)."""
    # A loaded server works through a backlog before it answers: generous, never the verdict.
    response = httpx.get(url + "/test/rel/stats" + ("?gc=1" if collect else ""), timeout=60)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def frozen_socket(url: str, path: str, rcvbuf: int = 4096, version: str = "1.1") -> socket.socket:
    """A client that sends its request and then never reads: its receive window fills up.

    SO_RCVBUF must be set before connect() for the kernel to advertise the small window.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(address(url))
    sock.sendall(request(path, version=version))
    return sock


def dechunk(raw: bytes) -> bytes:
    """The body bytes of the complete chunks in ``raw`` (a chunked body read so far)."""
    body = bytearray()
    position = 0
    while True:
        end = raw.find(b"\r\n", position)
        if end < 0:
            break
        size = int(raw[position:end].split(b";")[0] or b"0", 16)
        if size == 0 or end + 2 + size + 2 > len(raw):
            break
        body += raw[end + 2 : end + 2 + size]
        position = end + 2 + size + 2
    return bytes(body)


class RawStream:
    """One event stream over a plain socket."""

    def __init__(self, url: str, path: str, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = address(url)
        self.path = path
        self.headers = headers or {}
        self.status = 0
        self.head = b""
        self.raw = b""
        self.eof = False
        self._chunked = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self, within: float = 20) -> int:
        """Send the request and read the response head; return the status code."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), within
        )
        self._reader, self._writer = reader, writer
        writer.write(request(self.path, self.headers))
        buffer = await read_until(reader, b"\r\n\r\n", within)
        self.head, _, self.raw = buffer.partition(b"\r\n\r\n")
        self.status = int(self.head.split(b" ", 2)[1])
        self._chunked = b"transfer-encoding: chunked" in self.head.lower()
        return self.status

    @property
    def body(self) -> bytes:
        return dechunk(self.raw) if self._chunked else self.raw

    def events(self) -> list[Event]:
        return parse(self.body).events

    async def _read(self) -> None:
        assert self._reader is not None
        chunk = await self._reader.read(65536)
        if chunk:
            self.raw += chunk
        else:
            self.eof = True

    async def read_events(self, count: int, within: float = 20) -> list[Event]:
        """Read until ``count`` events arrived (or the stream ended); return them all."""
        async with asyncio.timeout(within):
            while len(self.events()) < count and not self.eof:
                await self._read()
        return self.events()

    async def read_to_end(self, within: float = 20) -> None:
        """Read until the server closes the connection."""
        async with asyncio.timeout(within):
            while not self.eof:
                try:
                    await self._read()
                except ConnectionError:
                    self.eof = True

    @property
    def finished(self) -> bool:
        """The response is complete (its last chunk came): what an EventSource calls the end."""
        return self.eof or (self._chunked and self.raw.endswith(b"0\r\n\r\n"))

    async def read_to_finish(self, within: float = 20) -> None:
        """Read until the response is complete; the connection may stay open (keep-alive)."""
        async with asyncio.timeout(within):
            while not self.finished:
                try:
                    await self._read()
                except ConnectionError:
                    self.eof = True

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass


TICK = re.compile(rb'"seq": ?(-?\d+), ?"t": ?([0-9.eE+-]+)')
ID = re.compile(rb"^id: ?(.*)$", re.M)
RETRY = re.compile(rb"^retry: ?(\d+)$", re.M)


class Browser:
    """What an ``EventSource`` does, on a raw socket.

    It reads every event and remembers the last id; when the stream ends or cannot be opened,
    it reconnects after ``retry`` seconds (or what the server's ``retry:`` field said) with
    ``Last-Event-ID``. It records each event's ``seq`` and publish-to-receipt latency: events
    carry the ``time.monotonic()`` of their publication, one clock for every process on Linux.
    """

    def __init__(
        self, url: str, path: str, last_event_id: str | None = None, retry: float = 0.0
    ) -> None:
        self.url = url
        self.path = path
        self.retry = retry
        self.seqs: list[int] = []
        self.latency: dict[int, float] = {}
        self.last_id: str | None = last_event_id
        self.buffer = b""
        self.task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.failures: list[str] = []  # why connections could not be opened
        self.opened = asyncio.Event()

    async def connect(self) -> None:
        host, port = address(self.url)
        self.reader, self.writer = await asyncio.open_connection(host, port)
        headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
        self.writer.write(request(self.path, headers, version="1.0"))
        head = await read_until(self.reader, b"\r\n\r\n", limit=20)
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status:
            self.writer.close()
            raise ConnectionError(status.decode(errors="replace"))
        self.feed(head.split(b"\r\n\r\n", 1)[1])
        self.opened.set()

    async def open(self) -> None:
        """Connect once (failing loudly), then keep reading and reconnecting in a task."""
        await self.connect()
        self.task = asyncio.get_running_loop().create_task(self.run())

    def feed(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        for block in blocks:
            retry = RETRY.search(block)
            if retry is not None:
                self.retry = int(retry[1]) / 1000
            event_id = ID.search(block)
            if event_id is not None:
                self.last_id = event_id[1].decode()
            tick = TICK.search(block)
            if tick is not None:
                seq = int(tick[1])
                self.seqs.append(seq)
                self.latency[seq] = now - float(tick[2])

    async def run(self) -> None:
        while True:
            try:
                while chunk := await self.reader.read(65536):
                    self.feed(chunk)
            except OSError:
                pass
            # An unterminated event is discarded; the next connection resumes from the last id.
            self.writer.close()
            self.buffer = b""
            while True:
                await asyncio.sleep(self.retry)
                self.reconnects += 1
                try:
                    await self.connect()
                    break
                except (OSError, TimeoutError) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}"[:100])

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task])
        self.writer.close()


async def all_received(browsers: list[Browser], count: int, limit: float = 60) -> None:
    """Wait until every browser has ``count`` events; fail after ``limit`` seconds."""
    # Polling keeps the readers untouched by the test's bookkeeping.
    await until_async(lambda: all(len(b.seqs) >= count for b in browsers), within=limit)
