"""Real server processes for the tests: Daphne or uvicorn on a socket the test bound itself.

The test binds a loopback socket on port 0 and hands its file descriptor to the server (both
servers take ``--fd``), so there is no race for a free port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
READY_WITHIN = 90


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
                self.process.kill()
                self.process.wait(5)
        self.sock.close()


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_server(
    kind: str,
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    app: str = "tests.asgi:application",
    port: int = 0,
    ready_path: str = "/test/health",
    args: Sequence[str] = (),
    cwd: Path = ROOT,
) -> ServerProcess:
    """Start ``kind`` on a loopback socket (``port`` 0: any free one); ``args`` go to the server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.set_inheritable(True)
    fd = sock.fileno()
    host, bound_port = sock.getsockname()
    if kind == "daphne":
        command = [sys.executable, "-m", "daphne", "--fd", str(fd), *args, app]
    elif kind == "uvicorn":
        command = [
            *(sys.executable, "-m", "uvicorn", "--fd", str(fd), "--log-level", "warning"),
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
            pass_fds=[fd],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(kind, f"http://{host}:{bound_port}", process, log_path, sock)
    # A server starts in a second or two; on a loaded machine it can take many times that.
    deadline = time.monotonic() + READY_WITHIN
    while True:
        if process.poll() is not None:
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
