"""The capacity workloads (issue 15): saturation, across processes, many streams in one process.

- **saturation**: ``subs`` subscribers on one server, the publish rate stepped up (x1.5 a step)
  until p99 publish-to-receipt exceeds 500 ms or a subscriber misses an event; the highest rate
  that held is the target's ceiling (deliveries/s, server CPU-s per 1,000 deliveries).
- **crossprocess**: the same steps with two uvicorn processes sharing a private Redis: every
  subscriber on one, the publisher on the other; Redis ``INFO commandstats`` deltas give the
  broker commands per publish.
- **manystreams**: as many streams as one process's fd limit allows (uvicorn), the client
  spread over loopback source addresses; connect time and RSS per stream, then a fan-out to all.

Each measurement gets fresh server processes (and a fresh Redis); the load client is
``bench.capacity_client`` in its own process. ``run()`` records rows like ``bench.run`` does.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import servers
from bench.servers import TARGETS, Target

WORKLOADS = ("saturation", "crossprocess", "manystreams")
Record = Callable[[Target, str, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Size:
    subs: int  # saturation and cross-process subscribers
    daphne_subs: int  # Daphne's saturation also at this size (see run())
    start_rate: int  # events/s of the first step
    step_s: float  # publishing time per step
    max_rate: int  # stop stepping here (the smoke test's few events)
    streams: int  # many streams: 0 means as many as the fd limit allows
    drain: float = 5.0


SIZES = {
    "full": Size(5000, 1000, 1, 10.0, 20_000, 0),
    "quick": Size(500, 100, 2, 3.0, 20_000, 3000),
    "smoke": Size(3, 2, 2, 1.0, 2, 5, drain=30.0),
}

# The cross-process targets: (name, BENCH_APP, BENCH_LAYER), all on two uvicorn processes.
CROSS = [
    ("django_sse, RedisPubSubChannelLayer", "django_sse", "pubsub"),
    ("django_sse, RedisChannelLayer", "django_sse", "core"),
    ("Channels recipe, RedisPubSubChannelLayer", "recipe", "pubsub"),
    ("Channels recipe, RedisChannelLayer", "recipe", "core"),
    ("django-eventstream, Redis", "eventstream", "pubsub"),
]
MANY = [t for t in TARGETS if t.server == "uvicorn" and t.family in ("bare", "django_sse")]


def stream_limit() -> int:
    """Streams one process can hold: its fd hard limit less some for everything else."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(50_000, hard - 500)


def client(args: list[str], timeout: float) -> dict[str, Any]:
    return servers.run_client("bench.capacity_client", args, timeout)


def step_args(size: Size) -> list[str]:
    return [
        *("--subs", str(size.subs), "--start-rate", str(size.start_rate)),
        *("--step-s", str(size.step_s), "--max-rate", str(size.max_rate)),
        *("--drain", str(size.drain)),
    ]


def saturation(target: Target, size: Size, log_dir: Path) -> dict[str, Any]:
    server = servers.start(target, log_dir)
    try:
        args = ["saturation", "--url", server.url, "--server-pid", str(server.pid)]
        return client([*args, *step_args(size)], 3600)
    finally:
        server.stop()


def crossprocess(app: str, layer: str, size: Size, log_dir: Path) -> dict[str, Any]:
    redis = servers.Redis()
    url = redis.start()
    if url is None:
        return {"error": "redis-server is not installed"}
    env = {"BENCH_APP": app, "REDIS_URL": url, "BENCH_LAYER": layer}
    target = Target(app, "bench.djangoapps.asgi:application", "uvicorn", env, app)
    started: list[servers.Server] = []
    try:
        started = [servers.start(target, log_dir) for _ in range(2)]
        subscribers, publisher = started
        args = [
            *("saturation", "--url", subscribers.url, "--publish-url", publisher.url),
            *("--server-pid", str(subscribers.pid), "--server-pid", str(publisher.pid)),
            *("--redis-url", url),
        ]
        return client([*args, *step_args(size)], 3600)
    finally:
        for server in started:
            server.stop()
        redis.stop()


def manystreams(target: Target, conns: int, log_dir: Path) -> dict[str, Any]:
    server = servers.start(target, log_dir)
    try:
        args = ["manystreams", "--url", server.url, "--server-pid", str(server.pid)]
        return client([*args, "--conns", str(conns), "--sources", "8"], 3600)
    finally:
        server.stop()


def guarded(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = measure()
    except RuntimeError as exc:  # a server that did not start
        result = {"error": str(exc).splitlines()[0]}
    result["wall_s"] = time.monotonic() - started
    return result


def run(
    workloads: list[str], targets: list[Target], size_name: str, log_dir: Path, record: Record
) -> None:
    size = SIZES[size_name]
    if "saturation" in workloads:
        print(f"saturation: {size.subs:,} subscribers, x1.5 a {size.step_s:g} s step", flush=True)
        for target in targets:
            result = guarded(lambda target=target: saturation(target, size, log_dir))
            record(target, "saturation", {"subs": size.subs}, result)
        # Under Daphne no Django app holds even 1 event/s to 5,000 subscribers (one publish's
        # writes take longer than the 500 ms limit), so Daphne's ceilings are compared at a
        # size where they have one.
        smaller = replace(size, subs=size.daphne_subs)
        print(f"saturation under Daphne: {smaller.subs:,} subscribers", flush=True)
        for target in [t for t in targets if t.server == "daphne"]:
            result = guarded(lambda target=target: saturation(target, smaller, log_dir))
            record(target, "saturation", {"subs": smaller.subs}, result)
    if "crossprocess" in workloads:
        families = {target.family for target in targets}
        print(f"across processes: {size.subs:,} subscribers on one uvicorn process", flush=True)
        for name, app, layer in CROSS:
            if app not in families and app != "recipe":
                continue
            target = Target(name, "", "uvicorn", {}, app)
            result = guarded(lambda app=app, layer=layer: crossprocess(app, layer, size, log_dir))
            record(target, "crossprocess", {"subs": size.subs, "layer": layer}, result)
    if "manystreams" in workloads:
        conns = size.streams or stream_limit()
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(f"many streams: {conns:,} in one process (fd hard limit {hard:,})", flush=True)
        for target in [t for t in MANY if t in targets]:
            result = guarded(lambda target=target: manystreams(target, conns, log_dir))
            result["fd_hard_limit"] = hard
            record(target, "manystreams", {"conns": conns}, result)
