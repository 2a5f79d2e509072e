"""Start the servers under test on loopback sockets bound here (``--fd``: no port race)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A server is ready once /health answers: on a loaded machine Django's start takes tens of
# seconds, so the deadline is generous and only a server that never answers hits it.
START_TIMEOUT = 300.0


@dataclass(frozen=True)
class Target:
    """One app on one server, as the tables name it."""

    name: str
    app: str  # "module:attribute" of the ASGI application
    server: str  # "uvicorn" or "daphne"
    env: Mapping[str, str] = field(default_factory=dict)
    family: str = ""  # which app, whatever the server

    @property
    def label(self) -> str:
        return f"{self.name} ({self.server})"


def _django(app: str, server: str) -> Target:
    names = {"hub": "Django hub", "django_sse": "django_sse", "eventstream": "django-eventstream"}
    return Target(names[app], "bench.djangoapps.asgi:application", server, {"BENCH_APP": app}, app)


TARGETS = [
    Target("bare ASGI", "bench.apps.bare:app", "uvicorn", family="bare"),
    Target("sse-starlette", "bench.apps.starlette_sse:app", "uvicorn", family="starlette"),
    Target("FastAPI sse", "bench.apps.fastapi_sse:app", "uvicorn", family="fastapi"),
    _django("hub", "uvicorn"),
    _django("hub", "daphne"),
    _django("eventstream", "uvicorn"),
    _django("eventstream", "daphne"),
    _django("django_sse", "uvicorn"),
    _django("django_sse", "daphne"),
    # django_sse with its Prometheus metrics on: the cost of DJANGO_SSE["METRICS"].
    Target(
        "django_sse+metrics",
        "bench.djangoapps.asgi:application",
        "uvicorn",
        {"BENCH_APP": "django_sse", "BENCH_METRICS": "1"},
        "django_sse_metrics",
    ),
]


def raise_fd_limit() -> None:
    # Inherited by the servers started from here: each holds up to 10,000 sockets.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    target: Target
    url: str
    process: subprocess.Popen[bytes]
    sock: socket.socket
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.sock.close()


def command(target: Target, fd: int) -> list[str]:
    if target.server == "uvicorn":
        # Pinned loop and parser so that every uvicorn target runs the same stack.
        return [
            sys.executable, "-m", "uvicorn", "--fd", str(fd), "--loop", "asyncio",
            "--http", "httptools", "--lifespan", "off", "--no-access-log",
            "--log-level", "warning", target.app,
        ]  # fmt: skip
    if target.server == "daphne":
        return [sys.executable, "-m", "daphne", "--fd", str(fd), "-v", "0", target.app]
    raise ValueError(target.server)


def start(
    target: Target,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    start_timeout: float = START_TIMEOUT,
) -> Server:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    full_env = dict(os.environ)
    full_env.update(
        {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    )
    full_env.update(target.env)
    full_env.update(env or {})
    log_path = log_dir / f"{target.family}-{target.server}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command(target, sock.fileno()),
            cwd=ROOT,
            env=full_env,
            pass_fds=[sock.fileno()],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(target, f"http://127.0.0.1:{port}", process, sock, log_path)
    deadline = time.monotonic() + start_timeout
    while True:
        if process.poll() is not None:
            sock.close()
            raise RuntimeError(f"{target.label} exited with {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"{target.label} did not answer within {start_timeout:.0f} s:\n{server.log()}"
            )
        time.sleep(0.1)


class Redis:
    """A private redis-server on a free loopback port, no persistence; None if not installed."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.dir = ""

    def start(self) -> str | None:
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        self.url = f"redis://127.0.0.1:{port}/0"
                        return self.url
            except OSError:
                time.sleep(0.1)
        self.stop()
        return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_client(module: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run a load client (``python -m module ... --out FILE``) and read its JSON result.

    A client that times out or fails gives ``{"error": ...}`` with its last line of stderr.
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", module, *args, "--out", out.name]
        try:
            completed = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"error": f"client timed out after {timeout:.0f} s"}
        if completed.returncode != 0:
            lines = completed.stderr.strip().splitlines() or ["no output"]
            return {"error": lines[-1][:300]}
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
        return result
