"""Raw-socket HTTP/1.1 clients for the reliability tests: cheap enough for thousands of cycles.

An httpx client per connection costs more than the server it measures; these speak just enough
HTTP to open an event stream and read its bytes. Every read is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from urllib.parse import urlsplit

import httpx

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
    """The server's ``/test/rel/stats`` (see tests/reliability_views.py)."""
    response = httpx.get(url + "/test/rel/stats" + ("?gc=1" if collect else ""), timeout=20)
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
