"""Idle streams hold no database connection: 1,000 streams on PostgreSQL (max_connections=100).

Each stream's request has used the database from its own thread (Django runs a request's sync
code there). The control case shows that such a connection would otherwise stay open as long as
the stream does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import StartServer
from tests.support.servers import ServerProcess, manage

pytestmark = pytest.mark.server


@pytest.fixture(scope="session")
def idle_database(postgres_url: str) -> str:
    """A database of its own, so that only this test's server connects to it."""
    # Named after the configured one, so that two suites on one server do not share it.
    database = urlsplit(postgres_url).path.strip("/") + "_django_sse_idle"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')
    url = urlsplit(postgres_url)._replace(path="/" + database).geturl()
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    return url


def connections_to(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [urlsplit(url).path.strip("/")],
        ).fetchone()
    assert row is not None
    return int(row[0])


class Streams:
    """Many raw HTTP/1.1 event streams held open by one asyncio loop."""

    def __init__(self, server: ServerProcess) -> None:
        url = urlsplit(server.url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self, path: str, count: int, concurrency: int = 40) -> None:
        # Bounded concurrency: a connect burst opens at most this many database connections
        # at once (each is released before its stream goes idle).
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                self.connections.append((reader, writer))

        async with asyncio.timeout(120):
            await asyncio.gather(*(one() for _ in range(count)))

    async def read_until(self, marker: bytes) -> int:
        async def one(reader: asyncio.StreamReader) -> bool:
            seen = b""
            while marker not in seen:
                chunk = await reader.read(65536)
                if not chunk:
                    return False
                seen = seen[-len(marker) :] + chunk
            return True

        async with asyncio.timeout(60):
            results = await asyncio.gather(*(one(reader) for reader, _ in self.connections))
        return sum(results)

    async def close(self) -> None:
        for _, writer in self.connections:
            writer.close()
        self.connections.clear()


@pytest.fixture
def server(start: StartServer, idle_database: str, redis_url: str) -> Iterator[ServerProcess]:
    yield start(
        "uvicorn",
        env={
            "DATABASE_URL": idle_database,
            "REDIS_URL": redis_url,
            "DJANGO_SSE_KEY_PREFIX": f"idle{id(idle_database)}",
            "DJANGO_SSE_PING_INTERVAL": "5",
        },
    )


@pytest.mark.slow
def test_a_thousand_idle_streams_hold_no_database_connection(
    server: ServerProcess, idle_database: str, redis_url: str
) -> None:
    async def scenario() -> tuple[int, int]:
        streams = Streams(server)
        try:
            await streams.open("/test/live/checked", 1000)
            held = connections_to(idle_database)
            manage(
                "shell",
                "--no-imports",
                "-c",
                "from demo_project.items.models import Item\n"
                "Item.objects.create(name='to all', price='1.00')",
                env={
                    "DATABASE_URL": idle_database,
                    "REDIS_URL": redis_url,
                    "DJANGO_SSE_KEY_PREFIX": f"idle{id(idle_database)}",
                },
            )
            return held, await streams.read_until(b"event: created")
        finally:
            await streams.close()

    held, received = asyncio.run(scenario())
    assert held <= 2, f"{held} connections held by 1,000 idle streams"
    assert received == 1000


def test_control_a_stream_that_keeps_its_connection_holds_one_each(
    server: ServerProcess, idle_database: str
) -> None:
    async def scenario() -> int:
        streams = Streams(server)
        try:
            await streams.open("/test/live/holding", 30)
            return connections_to(idle_database)
        finally:
            await streams.close()

    assert asyncio.run(scenario()) >= 30
