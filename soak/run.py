"""`make soak`: hold thousands of streams for minutes with steady publishing, and watch.

One django_sse server process (the bench's Django app, in-memory layer and replay log) serves
``--streams`` subscribers of one group; the server publishes ``--rate`` ticks per second for
``--seconds``. Every ``--sample`` seconds this records the server's RSS and CPU, the open
streams, and the publish-to-receipt latency of the ticks received in that interval. At the end
every stream must have every tick, in order, and still be open: the exit status says whether.

Writes ``soak/results/soak.json``, ``soak.png`` (memory and latency over time) and ``SOAK.md``.

    python -m soak.run --seconds 600 --streams 5000 --rate 1

The load client and the server launcher are the bench's (bench/client.py, bench/servers.py);
run it in the bench's virtualenv, which has httptools and matplotlib.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.client import Run, cpu_seconds, http_get, percentile, raise_fd_limit, rss_kib
from bench.servers import TARGETS, Server, start

OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=1, help="ticks published per second")
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--concurrency", type=int, default=200, help="connects at once")
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


async def soak(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])
    run = Run(server.url, "ticks", expected_events=1 << 60)
    rss_idle = rss_kib(server.pid)
    connect_s, errors = await run.open_many("/stream", args.streams, args.concurrency, 60)
    # Every stream has joined before the clock starts: markers (seq -1) until each saw one.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(s.warm or s.closed for s in run.streams):
        await http_get(host, port, "/publish?n=1&start=-1")
        await asyncio.sleep(1)
    await asyncio.sleep(1)
    total = int(args.seconds * args.rate)
    result: dict[str, Any] = {
        "server": args.server,
        "streams": args.streams,
        "seconds": args.seconds,
        "rate": args.rate,
        "ticks": total,
        "connect_s": connect_s,
        "connect_errors": errors,
        "not_warm": sum(not s.warm for s in run.streams),
        "rss_idle_kib": rss_idle,
        "python": platform.python_version(),
    }
    gc.disable()  # a sample's worth of floats at a time; no collection pauses in the client
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    cpu_start = cpu_seconds(server.pid)
    status, _ = await http_get(host, port, f"/publish?n={total}&rate={args.rate}&start=0")
    if status != 200:
        raise RuntimeError(f"/publish answered {status}")
    end = started + args.seconds + 10  # the publishing time and a bounded drain
    while True:
        await asyncio.sleep(min(args.sample, max(0.1, end - time.monotonic())))
        now = time.monotonic()
        latencies, run.latencies = sorted(run.latencies), []
        gc.collect()
        samples.append(
            {
                "t": now - started,
                "rss_mib": rss_kib(server.pid) / 1024,
                "cpu_s": cpu_seconds(server.pid) - cpu_start,
                "open": sum(not s.closed for s in run.streams),
                "received": len(latencies),
                "p50_ms": 1000 * (percentile(latencies, 0.5) or 0),
                "p99_ms": 1000 * (percentile(latencies, 0.99) or 0),
                "max_ms": 1000 * (latencies[-1] if latencies else 0),
            }
        )
        print(json.dumps({k: round(v, 1) for k, v in samples[-1].items()}), flush=True)
        done = all(s.events >= total or s.closed for s in run.streams)
        if now >= end or (done and now >= started + args.seconds):
            break
    result.update(
        {
            "samples": samples,
            "complete": sum(s.events == total for s in run.streams),
            "in_order": sum(s.disorder == 0 for s in run.streams),
            "closed_early": sum(s.closed for s in run.streams),
            "deliveries": sum(s.events for s in run.streams),
        }
    )
    run.abort_all()
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    minutes = [s["t"] / 60 for s in samples]
    figure, (memory, latency) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    rss = [s["rss_mib"] for s in samples]
    memory.plot(minutes, rss, ".-", color="tab:blue", label="with the streams open")
    idle = result["rss_idle_kib"] / 1024
    memory.axhline(idle, color="tab:gray", linestyle="--", label="idle, before connecting")
    memory.set_ylabel("server RSS (MiB)")
    memory.set_ylim(0, max(rss) * 1.2)
    memory.legend(loc="lower right")
    memory.grid(alpha=0.3)
    memory.set_title(
        f"django_sse soak: {result['streams']:,} streams, {result['rate']} event/s "
        f"({result['server']}, one process)"
    )
    for key, style in (("p50_ms", "-"), ("p99_ms", "--"), ("max_ms", ":")):
        latency.plot(minutes, [s[key] for s in samples], style, label=key.replace("_ms", ""))
    latency.set_ylabel("publish to receipt (ms)")
    latency.set_xlabel("minutes")
    latency.set_ylim(bottom=0)
    latency.legend()
    latency.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summary(result: dict[str, Any]) -> str:
    samples = result["samples"]
    first, last = samples[0], samples[-1]
    ok = result["complete"] == result["streams"] and result["closed_early"] == 0
    lines = [
        "# Soak",
        "",
        f"`make soak`: {result['streams']:,} streams on one {result['server']} process for "
        f"{result['seconds']:.0f} s, {result['rate']} event/s to all of them "
        f"(Python {result['python']}; a shared 2-core machine: read trends, not absolutes).",
        "",
        f"- connect: {result['connect_s']:.1f} s, errors {result['connect_errors'] or 'none'}",
        f"- server RSS: {result['rss_idle_kib'] / 1024:.0f} MiB idle, "
        f"{first['rss_mib']:.0f} MiB after the first sample, {last['rss_mib']:.0f} MiB at the end",
        f"- deliveries: {result['deliveries']:,} of {result['ticks'] * result['streams']:,}; "
        f"streams with every event: {result['complete']:,}, in order: {result['in_order']:,}, "
        f"closed early: {result['closed_early']}",
        f"- result: {'PASS' if ok else 'FAIL'}",
        "",
        f"One row a minute: the {result['samples'][0]['t']:.0f}-second sample that ends then "
        "(CPU seconds are cumulative since publishing began).",
        "",
        "| minute | RSS MiB | server CPU s | open | received | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # One row a minute.
    interval = samples[1]["t"] - samples[0]["t"] if len(samples) > 1 else 60.0
    step = max(1, round(60 / max(1.0, interval)))
    for s in samples[step - 1 :: step] if len(samples) > step else samples:
        lines.append(
            f"| {s['t'] / 60:.1f} | {s['rss_mib']:.0f} | {s['cpu_s']:.0f} | {s['open']:,} | "
            f"{s['received']:,} | {s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {s['max_ms']:.0f} |"
        )
    lines += ["", "![memory and latency over time](soak.png)", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    raise_fd_limit()  # the client's sockets, and (inherited) the server's
    target = next(t for t in TARGETS if t.family == "django_sse" and t.server == args.server)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        server = start(target, Path(tmp))
        try:
            result = asyncio.run(soak(args, server))
        finally:
            server.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / "soak.png")
    text = summary(result)
    (args.out / "SOAK.md").write_text(text)
    print(text)
    if result["complete"] != result["streams"] or result["closed_early"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
