"""A raw-socket event-stream client: cheap enough to hold a thousand streams in one test.

An httpx client per stream would cost more than the server under test. This one speaks just
enough HTTP/1.1 (a request, the response head, chunked bodies) to read an event stream, and
parses it with the spec-exact parser. Every read is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from tests.sse_parser import Event, parse


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


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
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), within
        )
        lines = [f"GET {self.path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        buffer = b""
        async with asyncio.timeout(within):
            while b"\r\n\r\n" not in buffer:
                chunk = await self._reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"closed before the response head: {buffer[:300]!r}")
                buffer += chunk
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
