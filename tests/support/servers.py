"""Real server processes for the tests: Daphne, uvicorn, hypercorn or granian, on loopback.

The test binds a loopback socket on port 0 and hands its file descriptor to the server (Daphne
and uvicorn take ``--fd``, hypercorn ``--bind fd://N``), so there is no race for a free port.
granian binds its own socket: it gets the port the test's socket holds, after the test closed
it (a start that loses the port to another process is retried on a new one).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 90
# Every ASGI server the suite runs its real-server tests on (tests/support/server_kinds.py).
KINDS = ("daphne", "uvicorn", "granian", "hypercorn")


@dataclass
class ServerProcess:
    kind: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    sock: socket.socket = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.sock.close()

    def kill(self) -> None:
        """SIGKILL the server and its workers (granian serves from a child process)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(5)


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.settings")
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_server(
    kind: str,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    app: str = "tests.support.asgi:application",
    port: int = 0,
    ready_path: str = "/test/health",
    args: Sequence[str] = (),
    cwd: Path = ROOT,
) -> ServerProcess:
    """Start ``kind`` on a loopback socket (``port`` 0: any free one); ``args`` go to the server."""
    for attempt in range(3):
        try:
            return _start_server(kind, log_dir, env, app, port, ready_path, args, cwd)
        except PortTaken:
            if port or attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(RuntimeError):
    """granian could not bind the port it was given: another process took it meanwhile."""


def _start_server(
    kind: str,
    log_dir: Path,
    env: Mapping[str, str] | None,
    app: str,
    port: int,
    ready_path: str,
    args: Sequence[str],
    cwd: Path,
) -> ServerProcess:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.set_inheritable(True)
    fd = sock.fileno()
    host, bound_port = sock.getsockname()
    if kind == "granian":
        sock.close()  # granian binds the port itself
    if kind == "daphne":
        command = [sys.executable, "-m", "daphne", "--fd", str(fd), *args, app]
    elif kind == "uvicorn":
        command = [
            *(sys.executable, "-m", "uvicorn", "--fd", str(fd), "--log-level", "warning"),
            *args,
            app,
        ]
    elif kind == "hypercorn":
        command = [
            *(sys.executable, "-m", "hypercorn", "--bind", f"fd://{fd}"),
            *("--log-level", "warning"),
            *args,
            app,
        ]
    elif kind == "granian":
        command = [
            *(sys.executable, "-m", "granian", "--interface", "asgi"),
            *("--host", host, "--port", str(bound_port), "--log-level", "warning"),
            *args,
            app,
        ]
    else:
        raise ValueError(kind)
    log_path = log_dir / f"{kind}-{bound_port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=server_env(env),
            pass_fds=[] if kind == "granian" else [fd],
            stdout=log,
            stderr=subprocess.STDOUT,
            # A group of its own: kill() reaches the workers too.
            start_new_session=True,
        )
    server = ServerProcess(kind, f"http://{host}:{bound_port}", process, log_path, sock)
    # A server starts in a second or two; on a loaded machine it can take many times that.
    deadline = time.monotonic() + READY_WITHIN
    while True:
        if process.poll() is not None:
            if kind == "granian" and "Address already in use" in server.log():
                raise PortTaken(server.log())
            raise RuntimeError(f"{kind} exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + ready_path, timeout=2).status_code < 500:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"{kind} did not answer within {READY_WITHIN} s:\n{server.log()}")
        time.sleep(0.1)


def manage(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``manage.py`` in a process of its own, as a developer would from a shell."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"


def make_env(redis_url: str, database: str, layer: str = PUBSUB) -> dict[str, str]:
    """The environment of servers sharing Redis and a database, in a key space of their own."""
    return {
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_BACKEND": layer,
        "DATABASE_URL": database,
        # Groups and replay streams of this test only, whatever else uses this Redis.
        "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:12],
        "DJANGO_SSE_PING_INTERVAL": "0.3",
    }


def shell(code: str, env: Mapping[str, str]) -> str:
    """Run ``code`` in ``manage.py shell``; return the last line it printed."""
    output = manage("shell", "--no-imports", "-c", code, env=env)
    return output.strip().splitlines()[-1] if output.strip() else ""
