from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, manage, start_server

REQUIRE_SERVICES = os.environ.get("DJANGO_SSE_REQUIRE_SERVICES") == "1"


# In-process tests take seconds even on a loaded machine; one that waits on a future nobody
# resolves should fail in minutes, not at the suite-wide ``timeout`` (pyproject) meant for the
# server tests. A test's own ``@pytest.mark.timeout`` wins.
IN_PROCESS_TIMEOUT = 120


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(name) for name in ("server", "browser", "timeout")):
            item.add_marker(pytest.mark.timeout(IN_PROCESS_TIMEOUT))


@pytest.fixture(autouse=True)
def processes_need_the_server_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail a test that starts a process without ``@pytest.mark.server``.

    ``-m "not server"`` is the fast suite: a process started in it (a server, ``manage.py``,
    ``redis-server``) makes it slow and dependent on the machine. Every process the suite starts
    goes through ``subprocess.Popen`` (``run``, ``check_output`` and asyncio's subprocesses too).
    """
    if request.node.get_closest_marker("server") or request.node.get_closest_marker("browser"):
        return

    class Refused(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            pytest.fail(
                f"{request.node.nodeid} starts a process ({args!r}) without @pytest.mark.server",
                pytrace=False,
            )

    monkeypatch.setattr(subprocess, "Popen", Refused)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is missing on a developer's machine; fail in CI."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and DJANGO_SSE_REQUIRE_SERVICES=1")
    pytest.skip(message)


# The services the suite talks to; override them on a machine where they live elsewhere or are
# shared (another Redis database, another PostgreSQL database). README: "Running the tests".
REDIS_URL = os.environ.get("DJANGO_SSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "DJANGO_SSE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
)


def require_url(name: str, url: str, default_port: int) -> str:
    parts = urlsplit(url)
    require_service(name, parts.hostname or "127.0.0.1", parts.port or default_port)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_url("Redis", REDIS_URL, 6379)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_url("PostgreSQL", POSTGRES_URL, 5432)


@pytest.fixture(scope="session")
def server_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file shared by the server processes of the session."""
    path = tmp_path_factory.mktemp("db") / "servers.sqlite3"
    url = f"sqlite:///{path}"
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> str:
    """The PostgreSQL test database, migrated once for the server processes of the session."""
    manage("migrate", "--noinput", env={"DATABASE_URL": postgres_url})
    return postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, server_database: str) -> str:
    """Each of the two databases the server processes run on, one test run per database."""
    if request.param == "sqlite":
        return server_database
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    folder = tmp_path / "markers"
    folder.mkdir()
    return folder


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start(tmp_path: Path, server_database: str, markers: Path) -> Iterator[StartServer]:
    """Start real server processes; every one is stopped when the test ends."""
    started: list[ServerProcess] = []

    def _start(
        kind: str = "daphne", env: dict[str, str] | None = None, **kwargs: Any
    ) -> ServerProcess:
        full_env = {
            "DATABASE_URL": server_database,
            "DJANGO_SSE_TEST_MARKERS": str(markers),
            **(env or {}),
        }
        server = start_server(kind, tmp_path, env=full_env, **kwargs)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


@pytest.fixture
def daphne(start: StartServer) -> ServerProcess:
    return start("daphne", env={"DJANGO_SSE_PING_INTERVAL": "0.3"})


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        message = "redis-server is not on PATH"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and DJANGO_SSE_REQUIRE_SERVICES=1")
        pytest.skip(message)
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.kill()
