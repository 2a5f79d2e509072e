"""A private ``redis-server`` for tests that restart Redis or count its connections.

It runs on a spare loopback port, with the append-only file on and fsynced at every write
(``--appendonly yes --appendfsync always``, no RDB snapshots), in a directory of the test's own:
the replay log is a Redis Stream, and a Redis that restarts without persistence comes back empty.
Nothing else talks to it, so its ``INFO`` counters are the test's alone.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from tests.support.waiting import until


class RedisServer:
    """A private ``redis-server``: same port and data directory across restarts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        until(self.answers)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def info(self, section: str) -> dict[str, str]:
        """``INFO section`` as a dict (a raw socket: no client library of the code under test)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(f"INFO {section}\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                data += conn.recv(65536)
            size = int(data[1 : data.index(b"\r\n")])
            body_start = data.index(b"\r\n") + 2
            while len(data) < body_start + size:
                data += conn.recv(65536)
        body = data[body_start : body_start + size].decode()
        return dict(line.split(":", 1) for line in body.splitlines() if ":" in line)
