"""One connection with ten groups against ten connections with one group each (django_sse).

A page that follows ten groups either opens one stream for all of them (``subscribe([...])``,
combined feeds) or one stream per group. Both ways deliver the same events: ``browsers``
pages, each tick published to each of the ten groups, so every page receives ten events per
tick either way. Measured per way, each on a fresh server: deliveries per second, the server's
CPU while publishing (and per delivery) and while connecting, and its peak memory (``VmHWM``)
above what it held before the streams opened; with the in-memory layer and log, then with
Redis (``RedisPubSubChannelLayer`` and the Redis replay log, as a deployment runs). The load
client is bench/client.py's fan-out; the ticks are published in the server process
(bench/djangoapps/feeds_urls.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import servers
from bench.servers import Target

GROUPS = 10
# (pages, ticks per group, ticks per second per group)
SIZES = {"full": (300, 60, 5), "quick": (100, 30, 5), "smoke": (2, 3, 5)}

Record = Callable[[Target | None, str, dict[str, Any], dict[str, Any]], None]


def peak_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process, in KiB."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def measure(
    target: Target, shared: bool, size: tuple[int, int, int], log_dir: Path, redis_url: str | None
) -> dict[str, Any]:
    from bench.run import client  # bench.run imports this module

    pages, ticks, rate = size
    server = servers.start(target, log_dir, {"REDIS_URL": redis_url} if redis_url else None)
    try:
        before, _ = peak_kib(server.pid)
        publish = f"{server.url}/feeds/publish?groups={GROUPS}&n={ticks}&rate={rate}&start=0"
        publisher = [
            sys.executable,
            "-c",
            f"import urllib.request; urllib.request.urlopen({publish!r})",
        ]
        # Per connection: all ten groups' events (shared) or one group's (separate).
        per_stream = GROUPS if shared else 1
        args = [
            *("fanout", "--url", server.url, "--server-pid", str(server.pid)),
            *("--subs", str(pages if shared else pages * GROUPS)),
            *("--events", str(ticks * per_stream), "--rate", str(rate * per_stream)),
            "--path",
            f"/feeds/stream?groups={GROUPS}" if shared else "/feeds/stream?group=next",
            "--warm-path",
            f"/feeds/publish?groups={GROUPS}&n=1&start=-1",
            "--publisher-cmd",
            json.dumps(publisher),
        ]
        result = client(args, 900)
        _, peak = peak_kib(server.pid)
    finally:
        server.stop()
    result["peak_rss_growth_kib"] = peak - before
    delivered = result.get("delivered") or 0
    if delivered:
        result["server_cpu_us_per_delivery"] = result["server_cpu_s"] / delivered * 1e6
    # The fan-out client counts events out of seq order as disorder: ten groups interleave.
    result.pop("in_order_subs", None)
    return result


def run(targets: list[Target], size: str, log_dir: Path, record: Record) -> None:
    """Measure both ways on every django_sse target in ``targets``, in memory and on Redis."""
    pages, ticks, rate = SIZES[size]
    print(f"shared feeds: {pages} pages x {GROUPS} groups, {ticks} ticks at {rate}/s", flush=True)
    chosen = [target for target in targets if target.family == "django_sse"]
    if not chosen:
        return
    redis = servers.Redis()
    redis_url = redis.start()  # None without redis-server: the Redis rows are left out
    try:
        for layer, url in (("memory", None), ("redis", redis_url)):
            if layer == "redis" and url is None:
                continue
            for target in chosen:
                for shared in (True, False):
                    params = {
                        "way": "1 connection x 10 groups" if shared else "10 connections x 1 group",
                        "layer": layer,
                        "pages": pages,
                        "groups": GROUPS,
                        "ticks": ticks,
                        "rate": rate,
                    }
                    result = measure(target, shared, SIZES[size], log_dir, url)
                    record(target, "feeds", params, result)
    finally:
        redis.stop()
