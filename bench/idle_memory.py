"""What an idle stream holds, by allocating code: tracemalloc in a uvicorn server process.

    python -m bench.idle_memory [--app django_sse|hub|bare] [--conns 1000]

Starts the app under uvicorn with tracemalloc on (``bench.idle_memory:app`` wraps it and adds
``/__snapshot``), opens one stream (so that lazily imported code and caches are in the
baseline), snapshots, opens ``--conns`` more, snapshots again, and prints the growth per stream:
by allocating file, and by the nearest frame outside the standard library (which names the
library call that caused an allocation inside, say, asyncio or tempfile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sysconfig
import tempfile
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

FRAMES = 30
STDLIB = sysconfig.get_paths()["stdlib"]
APPS = {
    "django_sse": ("bench.djangoapps.asgi:application", {"BENCH_APP": "django_sse"}),
    "hub": ("bench.djangoapps.asgi:application", {"BENCH_APP": "hub"}),
    "bare": ("bench.apps.bare:app", {}),
}


def _load(spec: str) -> Any:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for marker in ("site-packages/", "/bench/", "/django_sse/"):
        if marker in name:
            name = name.rsplit(marker, 1)[1]
            name = (
                "bench/" if marker == "/bench/" else "django_sse/" if "sse/" in marker else ""
            ) + name
            break
    return f"{name}:{frame.lineno}"


def _report(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, streams: int
) -> dict[str, Any]:
    by_file: dict[str, int] = defaultdict(int)
    by_caller: dict[str, int] = defaultdict(int)
    total = 0
    for stat in after.compare_to(before, "traceback"):
        if stat.size_diff <= 0:
            continue
        total += stat.size_diff
        frames = list(reversed(stat.traceback))  # most recent call first
        by_file[_where(frames[0]).rsplit(":", 1)[0]] += stat.size_diff
        caller = next((f for f in frames if not f.filename.startswith(STDLIB)), frames[0])
        by_caller[_where(caller)] += stat.size_diff

    def top(table: dict[str, int], n: int) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda item: -item[1])[:n]
        return [(name, size / streams) for name, size in ranked]

    return {
        "streams": streams,
        "bytes_per_stream": total / streams,
        "by_file": top(by_file, 25),
        "by_caller": top(by_caller, 40),
    }


def make_app() -> Any:
    tracemalloc.start(FRAMES)
    inner = _load(os.environ["BENCH_WRAPPED"])
    snapshots: dict[str, tracemalloc.Snapshot] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__snapshot"):
            label = scope["query_string"].decode() or "before"
            import gc

            gc.collect()
            snapshots[label] = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            body = b"ok"
            if label.startswith("after="):
                streams = int(label.split("=", 1)[1])
                body = json.dumps(_report(snapshots["before"], snapshots[label], streams)).encode()
            length = [(b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": length})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return app


if os.environ.get("BENCH_WRAPPED"):
    app = make_app()


async def drive(url: str, conns: int) -> dict[str, Any]:
    from bench.client import Run, http_get

    run = Run(url, "ticks", 1)
    await run.open("/stream", 60)
    await asyncio.sleep(0.5)
    await http_get(run.host, run.port, "/__snapshot?before", 120)
    _, errors = await run.open_many("/stream", conns, 100, 120)
    await asyncio.sleep(2)
    _, body = await http_get(run.host, run.port, f"/__snapshot?after={conns}", 600)
    run.abort_all()
    result: dict[str, Any] = json.loads(body)
    result["connect_errors"] = errors
    return result


def main() -> None:
    from bench import servers
    from bench.servers import Target

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=sorted(APPS), default="django_sse")
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args()
    servers.raise_fd_limit()
    wrapped, env = APPS[args.app]
    target = Target(
        args.app, "bench.idle_memory:app", "uvicorn", {**env, "BENCH_WRAPPED": wrapped}, args.app
    )
    server = servers.start(target, Path(tempfile.mkdtemp(prefix="bench-idle-")))
    try:
        result = asyncio.run(drive(server.url, args.conns))
    finally:
        server.stop()
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{args.app}: {result['bytes_per_stream'] / 1024:.1f} KiB per stream (tracemalloc, "
        f"{result['streams']} streams, errors {result['connect_errors']})"
    )
    print("by allocating file (bytes per stream):")
    for name, size in result["by_file"]:
        print(f"  {size:8.0f}  {name}")
    print("by nearest non-stdlib frame:")
    for name, size in result["by_caller"]:
        print(f"  {size:8.0f}  {name}")


if __name__ == "__main__":
    main()
