"""Debian's nginx in front of a test server: a plain reverse-proxy config, in a temp dir.

nginx runs as a subprocess of the test (``-p <dir> -c <conf> -g 'daemon off;'``) on a free
loopback port; nothing outside the temp dir is read or written. ``CONFIG`` is the config
docs/topics/deployment.md shows, with the test's ports and paths filled in.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

# The location block is what a deployment needs for event streams (docs/topics/deployment.md).
CONFIG = """\
{user}worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    upstream django {{
        server {upstream};
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://django;
            # Keep-alive to the upstream needs HTTP/1.1 and no "Connection: close".
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # Event streams are idle between events: nginx cuts a connection that sends
            # nothing for this long. Keep it above DJANGO_SSE["PING_INTERVAL"].
            proxy_read_timeout {read_timeout};
            {extra}
        }}
    }}
}}
"""


@dataclass
class Nginx:
    url: str
    process: subprocess.Popen[bytes]
    directory: Path

    def log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_nginx(
    binary: str, directory: Path, upstream: str, *, read_timeout: str = "60s", extra: str = ""
) -> Nginx:
    """Start nginx proxying to ``upstream`` (``host:port``); retried if its port was taken."""
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        port = _free_port()
        # A root nginx would hand its workers to "nobody", who cannot write the temp dir.
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        config = directory / "nginx.conf"
        config.write_text(
            CONFIG.format(
                user=user,
                dir=directory,
                upstream=upstream,
                port=port,
                read_timeout=read_timeout,
                extra=extra,
            )
        )
        log = (directory / "stderr.log").open("wb")
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        nginx = Nginx(f"http://127.0.0.1:{port}", process, directory)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(nginx.url + "/test/health", timeout=2)
                return nginx
            except httpx.TransportError:
                time.sleep(0.1)
        nginx.stop()
        errors = (directory / "stderr.log").read_text(errors="replace") + nginx.log()
        if "Address already in use" not in errors:
            raise RuntimeError(f"nginx did not start:\n{errors}")
    raise RuntimeError("nginx found no free port in 3 tries")
