"""The capacity workloads' load client: saturation (the rate stepped up until latency breaks) and
many streams (as many as one process's fd limit allows, then a fan-out to all of them).

    python -m bench.capacity_client saturation --url http://127.0.0.1:8001 --subs 5000 \\
        --start-rate 2 --step-s 10 --out result.json
    python -m bench.capacity_client manystreams --url ... --conns 19000 --sources 8 --out ...

The subscribers connect to the first ``--url``; ``--publish-url`` (default: the same) is the
process whose ``/publish`` starts the ticks, so that the cross-process workload publishes in a
second server process. It reuses ``bench.client``'s streams (asyncio protocols, httptools).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from bench.client import (
    Run,
    cpu_seconds,
    http_get,
    own_cpu_seconds,
    percentile,
    raise_fd_limit,
    rss_kib,
    warm_up,
    write_result,
)


class StepRun(Run):
    """A run whose latency counts from each tick's place in the publishing schedule.

    A saturated server also publishes late (its publisher shares the event loop): measuring from
    the tick's own stamp would hide that lag, so a tick counts from the earlier of its stamp and
    its scheduled time (the step's first tick plus ``(seq - base) / rate``).
    """

    def __init__(self, url: str) -> None:
        super().__init__(url, "ticks")
        self.base = 0
        self.rate = 1.0
        self.first_stamp: float | None = None

    def begin_step(self, base: int, rate: float, events: int) -> None:
        self.base, self.rate, self.first_stamp = base, rate, None
        self.expected_events = base + events
        self.latencies = []
        self.completed = 0
        self.done.clear()
        for stream in self.streams:
            stream.complete = stream.events >= self.expected_events

    def latency(self, now: float, seq: int, published: float) -> float:
        if seq == self.base and self.first_stamp is None:
            self.first_stamp = published
        if self.first_stamp is None:
            return now - published
        scheduled = self.first_stamp + (seq - self.base) / self.rate
        return now - min(published, scheduled)


class BrokerStats:
    """Redis commands executed (``INFO commandstats``), to count broker messages per publish."""

    def __init__(self, url: str | None) -> None:
        self.client: Any = None
        if url:
            import redis

            self.client = redis.Redis.from_url(url)

    def calls(self) -> dict[str, int]:
        if self.client is None:
            return {}
        stats = self.client.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name != "cmdstat_info"
        }

    @staticmethod
    def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        changed = {name: after[name] - before.get(name, 0) for name in after}
        return {name: count for name, count in sorted(changed.items()) if count > 0}


def next_rate(rate: int, factor: float) -> int:
    return max(rate + 1, round(rate * factor))


async def wait_for_step(run: StepRun, publishing_s: float, drain: float, stall: float) -> None:
    """Until every stream has the step's events, or nothing arrives any more, or the drain ends."""
    started = time.monotonic()
    deadline = started + publishing_s + drain
    last_total, last_change = -1, started
    while time.monotonic() < deadline and not run.done.is_set():
        total = sum(stream.events for stream in run.streams)
        now = time.monotonic()
        if total != last_total:
            last_total, last_change = total, now
        elif now - last_change > stall and now > started + publishing_s:
            break
        await asyncio.sleep(0.05)


async def saturation(args: argparse.Namespace) -> dict[str, Any]:
    run = StepRun(args.url)
    publish = urlsplit(args.publish_url or args.url)
    publish_host, publish_port = publish.hostname or "127.0.0.1", publish.port or 80
    pid = args.server_pid[0]
    broker = BrokerStats(args.redis_url)
    gc.disable()  # hundreds of thousands of floats: no collections in the middle of a step
    connect_s, errors = await run.open_many(args.path, args.subs, args.concurrency, args.timeout)
    streams = run.streams
    result: dict[str, Any] = {"subs": args.subs, "connect_s": connect_s, "connect_errors": errors}
    result["not_warm"] = await warm_up(
        streams, publish_host, publish_port, args.warm_path, args.warm_timeout
    )
    steps: list[dict[str, Any]] = []
    seq, rate = 0, args.start_rate
    while rate <= args.max_rate:
        events = max(args.min_events, round(rate * args.step_s))
        before = {id(stream): stream.events for stream in streams}
        disorder = sum(stream.disorder for stream in streams)
        run.begin_step(seq, rate, events)
        cpu_before = [cpu_seconds(p) for p in args.server_pid]
        client_cpu_before = own_cpu_seconds()
        calls_before = broker.calls()
        started = time.monotonic()
        status, _ = await http_get(
            publish_host, publish_port, f"/publish?n={events}&rate={rate}&start={seq}"
        )
        if status != 200:
            raise RuntimeError(f"/publish answered {status}")
        await wait_for_step(run, events / rate, args.drain, args.stall)
        span = (run.last_receipt - started) if run.last_receipt > started else 0.0
        delivered = sum(stream.events - before[id(stream)] for stream in streams)
        latencies = sorted(run.latencies)
        live = [stream for stream in streams if not stream.closed]
        calls = broker.delta(calls_before, broker.calls())
        step = {
            "rate": rate,
            "events": events,
            "delivered": delivered,
            "expected": events * len(streams),
            "deliveries_per_s": delivered / max(span, events / rate),
            "p50_s": percentile(latencies, 0.50),
            "p99_s": percentile(latencies, 0.99),
            "max_s": latencies[-1] if latencies else None,
            "missed_subs": sum(stream.events < run.expected_events for stream in streams),
            "disorder": sum(stream.disorder for stream in streams) - disorder,
            "closed": len(streams) - len(live),
            "server_cpu_s": sum(
                cpu_seconds(p) - b for p, b in zip(args.server_pid, cpu_before, strict=True)
            ),
            # The client shares the machine: its CPU and the load say whether it kept up.
            "client_cpu_s": own_cpu_seconds() - client_cpu_before,
            "load_average": os.getloadavg()[0],
            "broker_calls": calls,
            "broker_calls_per_publish": sum(calls.values()) / events if calls else None,
        }
        p99 = step["p99_s"]
        step["held"] = bool(
            delivered == step["expected"]
            and not step["disorder"]
            and not step["closed"]
            and p99 is not None
            and p99 <= args.p99_limit
        )
        steps.append(step)
        print(json.dumps({k: v for k, v in step.items() if k != "broker_calls"}), file=sys.stderr)
        if not step["held"]:
            break
        seq += events
        rate = next_rate(rate, args.factor)
    held = [step for step in steps if step["held"]]
    best = max(held, key=lambda step: step["deliveries_per_s"]) if held else None
    result.update(
        {
            "steps": steps,
            "ceiling_rate": best["rate"] if best else None,
            "ceiling_deliveries_per_s": best["deliveries_per_s"] if best else None,
            "ceiling_p99_s": best["p99_s"] if best else None,
            "cpu_s_per_1k": 1000 * best["server_cpu_s"] / best["delivered"] if best else None,
            "broker_calls_per_publish": best["broker_calls_per_publish"] if best else None,
            "broke_by": broke_by(steps[-1]) if steps and not steps[-1]["held"] else "max rate",
            "rss_kib": rss_kib(pid),
        }
    )
    run.abort_all()
    return result


def broke_by(step: dict[str, Any]) -> str:
    reasons = []
    if step["delivered"] < step["expected"]:
        reasons.append(f"{step['missed_subs']} subscribers missed events")
    if step["disorder"]:
        reasons.append(f"{step['disorder']} gaps")
    if step["closed"]:
        reasons.append(f"{step['closed']} closed")
    if step["p99_s"] is not None and not reasons:
        reasons.append(f"p99 {step['p99_s'] * 1000:.0f} ms")
    return ", ".join(reasons) or "no delivery"


async def manystreams(args: argparse.Namespace) -> dict[str, Any]:
    """Open ``--conns`` streams over ``--sources`` loopback addresses, then fan out to all."""
    run = StepRun(args.url)
    run.sources = [f"127.0.0.{i + 1}" for i in range(args.sources)]
    pid = args.server_pid[0]
    gc.disable()
    await run.open("/stream", args.timeout)  # lazily imported code and caches in the baseline
    await asyncio.sleep(0.5)
    rss_before = rss_kib(pid)
    cpu_before = cpu_seconds(pid)
    connect_s, errors = await run.open_many("/stream", args.conns, args.concurrency, args.timeout)
    connect_cpu = cpu_seconds(pid) - cpu_before
    streams = run.streams
    not_warm = await warm_up(streams, run.host, run.port, args.warm_path, args.warm_timeout)
    rss_after = rss_kib(pid)
    run.begin_step(0, args.rate, args.events)
    started = time.monotonic()
    status, _ = await http_get(run.host, run.port, f"/publish?n={args.events}&rate={args.rate}")
    if status != 200:
        raise RuntimeError(f"/publish answered {status}")
    await wait_for_step(run, args.events / args.rate, args.drain, args.stall)
    latencies = sorted(run.latencies)
    opened = sum(not stream.closed for stream in streams) - 1
    result = {
        "conns": args.conns,
        "open": opened,
        "sources": args.sources,
        "connect_s": connect_s,
        "connect_us_per_stream": 1e6 * connect_s / max(1, opened),
        "connect_cpu_s": connect_cpu,
        "connect_errors": errors,
        "not_warm": not_warm,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_stream": (rss_after - rss_before) / opened if opened > 0 else None,
        "events": args.events,
        "delivered": sum(stream.events for stream in streams),
        "expected": args.events * len(streams),
        "complete_subs": sum(stream.events >= args.events for stream in streams),
        "streams": len(streams),
        "fanout_s": (run.last_receipt - started) if run.last_receipt > started else None,
        "p50_s": percentile(latencies, 0.50),
        "p99_s": percentile(latencies, 0.99),
        "max_s": latencies[-1] if latencies else None,
    }
    run.abort_all()
    return result


WORKLOADS = {"saturation": saturation, "manystreams": manystreams}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--url", required=True, help="the subscribers' server")
    parser.add_argument("--publish-url", help="the publisher's server (default: --url)")
    parser.add_argument("--server-pid", type=int, action="append", required=True)
    parser.add_argument("--redis-url", help="count broker commands (INFO commandstats)")
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--start-rate", type=int, default=5, help="events/s of the first step")
    parser.add_argument("--factor", type=float, default=1.5, help="rate step factor")
    parser.add_argument("--max-rate", type=int, default=20_000)
    parser.add_argument("--step-s", type=float, default=10.0, help="publishing time per step")
    parser.add_argument("--min-events", type=int, default=5, help="events per step at least")
    parser.add_argument("--p99-limit", type=float, default=0.5, help="seconds")
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=8, help="loopback source addresses")
    parser.add_argument("--events", type=int, default=3, help="many streams: fan-out events")
    parser.add_argument("--rate", type=int, default=1, help="many streams: fan-out rate")
    parser.add_argument("--concurrency", type=int, default=200, help="streams opening at once")
    parser.add_argument("--timeout", type=float, default=120.0, help="per connection")
    parser.add_argument("--warm-timeout", type=float, default=60.0)
    parser.add_argument("--drain", type=float, default=5.0, help="seconds after publishing")
    # BENCH_STALL_S: see bench.client (the smoke test waits longer on a loaded machine).
    stall = float(os.environ.get("BENCH_STALL_S", "2"))
    parser.add_argument("--stall", type=float, default=stall, help="stop when idle this long")
    parser.add_argument("--path", default="/stream", help="the stream to subscribe to")
    parser.add_argument("--warm-path", default="/publish?n=1&start=-1", help="publishes a marker")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    raise_fd_limit()
    write_result(asyncio.run(WORKLOADS[args.workload](args)), args.out)


if __name__ == "__main__":
    main()
