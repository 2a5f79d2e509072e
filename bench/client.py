"""The load client: its own process, asyncio protocols on raw sockets, httptools to parse HTTP.

It holds up to tens of thousands of streams in one process, so it does as little per event as it
can: a regex over each complete block of events (``seq`` and publish time), nothing per byte.
Every phase is bounded in time, and the process ends by itself.

    python -m bench.client firehose --url http://127.0.0.1:8001 --n 50000 --out result.json
    python -m bench.client fanout --url ... --subs 1000 --events 200 --rate 20 --out ...
    python -m bench.client idle --url ... --conns 10000 --server-pid 1234 --out ...

Latency uses ``time.monotonic()``, which on Linux is one clock for every process of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import resource
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httptools

# A tick serialized by pydantic ("seq":1,"t":2.5) or by json.dumps ("seq": 1, "t": 2.5), or a
# model saved by the end-to-end publisher, whose name is "bench:<seq>:<time>".
TICK = re.compile(rb'"seq": ?(-?\d+), ?"t": ?([0-9.eE+-]+)|bench:(-?\d+):([0-9.]+)')
LINGER_RST = struct.pack("ii", 1, 0)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# A fan-out ends once nothing has arrived for this long after publishing. The smoke test
# (tests/scenarios/test_bench_smoke.py) raises it: a loaded machine may pause a server for seconds.
STALL_S = float(os.environ.get("BENCH_STALL_S", "5"))


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: less noisy than wall time on a shared machine."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


class Stream(asyncio.Protocol):
    """One SSE connection. ``mode`` is "count" (firehose) or "ticks" (fan-out, latency)."""

    def __init__(self, run: Run, request: bytes) -> None:
        self.run = run
        self.request = request
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = run.loop.create_future()
        self.status = 0
        self.tail = b""
        self.events = 0
        self.expected = 0
        self.disorder = 0
        self.warm = False
        self.closed = False
        self.complete = False
        self.last_seq = -1

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the stream opened: {exc}"))
        self.run.on_close(self)

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status != 200:
            self._fail(ConnectionError(f"HTTP {self.status}"))

    def on_body(self, body: bytes) -> None:
        if not self.opened.done():
            self.opened.set_result(None)
        buffer = self.tail + body if self.tail else body
        # Events end with a blank line: LF LF, or CR LF CR LF (sse-starlette's default).
        end = max(buffer.rfind(b"\n\n"), buffer.rfind(b"\n\r\n"))
        if end < 0:
            self.tail = buffer
            return
        self.tail = buffer[end + 1 :]
        if self.run.mode == "count":
            self.events += buffer.count(b"data:", 0, end)
            self.run.on_count(self)
            return
        now = time.monotonic()
        latencies = self.run.latencies
        for seq1, t1, seq2, t2 in TICK.findall(buffer, 0, end):
            seq = int(seq1 or seq2)
            if seq < 0:
                self.warm = True
                continue
            if seq != self.expected:
                self.disorder += 1
            self.expected = seq + 1
            self.events += 1
            latencies.append(self.run.latency(now, seq, float(t1 or t2)))
        self.last_seq = self.expected - 1
        self.run.last_receipt = now
        if self.events >= self.run.expected_events and not self.complete:
            self.complete = True
            self.run.on_complete(self)

    def on_message_complete(self) -> None:
        self.run.on_message_complete(self)

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close with a reset: no TIME_WAIT left behind, so the next run has ports to spare."""
        if self.transport is not None and not self.closed:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            self.transport.abort()


class Run:
    def __init__(self, url: str, mode: str, expected_events: int = 0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.loop = asyncio.get_running_loop()
        self.mode = mode
        self.expected_events = expected_events
        self.streams: list[Stream] = []
        self.latencies: list[float] = []
        self.last_receipt = 0.0
        self.completed = 0
        self.closed_early = 0
        self.done = asyncio.Event()
        self.finished_messages = 0
        # Loopback source addresses the streams are spread over (127.0.0.x): each gives its own
        # ephemeral port range, so tens of thousands of streams do not run out of ports.
        self.sources: list[str] = []
        self.connects = 0

    def latency(self, now: float, seq: int, published: float) -> float:
        """Publish-to-receipt of tick ``seq``, stamped ``published`` by the publisher."""
        return now - published

    def request(self, path: str) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()

    def on_count(self, stream: Stream) -> None:
        if self.expected_events and stream.events >= self.expected_events:
            self.last_receipt = time.monotonic()
            self.done.set()

    def on_complete(self, stream: Stream) -> None:
        self.completed += 1
        if self.completed >= len(self.streams):
            self.done.set()

    def on_message_complete(self, stream: Stream) -> None:
        self.finished_messages += 1
        if self.mode == "count":
            self.last_receipt = time.monotonic()
            self.done.set()

    def on_close(self, stream: Stream) -> None:
        if not self.done.is_set() and not stream.complete:
            self.closed_early += 1

    async def open(self, path: str, limit: float) -> Stream:
        request = self.request(path)
        source = None
        if self.sources:
            self.connects += 1
            source = (self.sources[self.connects % len(self.sources)], 0)
        _, stream = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: Stream(self, request), self.host, self.port, local_addr=source
            ),
            limit,
        )
        self.streams.append(stream)
        await asyncio.wait_for(asyncio.shield(stream.opened), limit)
        return stream

    async def open_many(
        self, path: str, count: int, concurrency: int, limit: float
    ) -> tuple[float, dict[str, int]]:
        """Open ``count`` streams, at most ``concurrency`` opening at once, each until its first
        body bytes (Daphne sends the headers only with them). Returns seconds and errors."""
        semaphore = asyncio.Semaphore(concurrency)
        errors: dict[str, int] = {}

        async def one() -> None:
            async with semaphore:
                try:
                    await self.open(path, limit)
                except (OSError, TimeoutError, ConnectionError) as exc:
                    name = type(exc).__name__
                    if isinstance(exc, ConnectionError):
                        name = f"{name} {exc}"[:80]
                    errors[name] = errors.get(name, 0) + 1

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(count)))
        return time.monotonic() - started, errors

    def abort_all(self) -> None:
        self.done.set()
        for stream in self.streams:
            stream.abort()


async def http_get(host: str, port: int, path: str, limit: float = 10) -> tuple[int, bytes]:
    async def get() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        return status, data.partition(b"\r\n\r\n")[2]

    return await asyncio.wait_for(get(), limit)


async def warm_up(streams: Sequence[Stream], host: str, port: int, path: str, limit: float) -> int:
    """Publish markers (seq -1) until every stream has seen one, so that a subscription that
    registers late is not counted as a loss; returns how many never saw one."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await http_get(host, port, path)
        await asyncio.sleep(0.3)
        if all(stream.warm or stream.closed for stream in streams):
            break
    await asyncio.sleep(0.5)
    return sum(not stream.warm for stream in streams)


async def firehose(args: argparse.Namespace) -> dict[str, Any]:
    run = Run(args.url, "count", args.n)
    started = time.monotonic()
    cpu_before = cpu_seconds(args.server_pid) if args.server_pid else None
    stream = await run.open(f"/firehose?n={args.n}", args.timeout)
    first_body = time.monotonic()
    try:
        await asyncio.wait_for(run.done.wait(), args.timeout)
    except TimeoutError:
        pass
    ended = run.last_receipt or time.monotonic()
    result: dict[str, Any] = {
        "events": stream.events,
        "expected": args.n,
        "seconds": ended - started,
        "first_byte_s": first_body - started,
        "events_per_s": stream.events / (ended - started) if ended > started else 0.0,
        "complete": stream.events >= args.n,
    }
    if cpu_before is not None:
        result["server_cpu_s"] = cpu_seconds(args.server_pid) - cpu_before
    run.abort_all()
    return result


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    run = Run(args.url[0], "ticks", args.events)
    urls = [urlsplit(url) for url in args.url]
    # Streams are spread over the given servers (the end-to-end workload runs two).
    runs = [run] + [Run(url, "ticks", args.events) for url in args.url[1:]]
    for extra in runs[1:]:
        extra.latencies = run.latencies
    per_server = [args.subs // len(runs) + (i < args.subs % len(runs)) for i in range(len(runs))]
    gc.disable()  # hundreds of thousands of floats: no collections in the middle of a burst
    connect_s = 0.0
    errors: dict[str, int] = {}
    # Server CPU spent connecting: wall time to connect swings with the machine's other load.
    connect_cpu = [cpu_seconds(pid) for pid in args.server_pid]
    for each, count in zip(runs, per_server, strict=True):
        seconds, errs = await each.open_many(args.path, count, args.concurrency, args.timeout)
        connect_s += seconds
        for name, value in errs.items():
            errors[name] = errors.get(name, 0) + value
    streams = [stream for each in runs for stream in each.streams]
    result: dict[str, Any] = {
        "subs": args.subs,
        "connect_s": connect_s,
        "connect_cpu_s": sum(
            cpu_seconds(pid) - before
            for pid, before in zip(args.server_pid, connect_cpu, strict=True)
        ),
        "connect_errors": errors,
    }

    # Prove every stream is subscribed before counting: publish markers (seq -1) until each
    # stream has seen one, so a subscription that registers late is not counted as a loss.
    publish_host, publish_port = urls[0].hostname or "127.0.0.1", urls[0].port or 80
    result["not_warm"] = await warm_up(
        streams, publish_host, publish_port, args.warm_path, args.warm_timeout
    )
    for stream in streams:
        stream.complete = stream.events >= args.events
    for each in runs:
        each.completed = sum(stream.complete for stream in each.streams)
        each.done.clear()

    cpu_before = [cpu_seconds(pid) for pid in args.server_pid]
    client_cpu_before = own_cpu_seconds()
    published = time.monotonic()
    publisher: asyncio.subprocess.Process | None = None
    if args.publisher_cmd:
        publisher = await asyncio.create_subprocess_exec(*json.loads(args.publisher_cmd))
    else:
        status, _ = await http_get(
            publish_host, publish_port, f"/publish?n={args.events}&rate={args.rate}&start=0"
        )
        if status != 200:
            raise RuntimeError(f"/publish answered {status}")
    # Bounded: the publishing time, then a drain that ends early once nothing arrives any more.
    deadline = published + args.events / args.rate + args.drain
    last_total, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        if all(each.done.is_set() or not each.streams for each in runs):
            break
        total = sum(stream.events for stream in streams)
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > args.stall and time.monotonic() > (
            published + args.events / args.rate
        ):
            break
        await asyncio.sleep(0.1)
    if publisher is not None:
        try:
            await asyncio.wait_for(publisher.wait(), 30)
        except TimeoutError:
            publisher.kill()
            await publisher.wait()
        result["publisher_exit"] = publisher.returncode
    last_receipt = max(each.last_receipt for each in runs)
    delivered = sum(stream.events for stream in streams)
    latencies = sorted(run.latencies)
    span = last_receipt - published if last_receipt > published else 0.0
    # Rated over the publishing time at least: a server that delivers the first events at once
    # and then stalls must not be credited with the rate of that first burst.
    window = max(span, args.events / args.rate)
    result.update(
        {
            "events": args.events,
            "rate": args.rate,
            "delivered": delivered,
            "expected_deliveries": args.events * len(streams),
            "deliveries_per_s": delivered / window,
            "span_s": span,
            "p50_s": percentile(latencies, 0.50),
            "p99_s": percentile(latencies, 0.99),
            "max_s": latencies[-1] if latencies else None,
            "complete_subs": sum(stream.events >= args.events for stream in streams),
            "in_order_subs": sum(stream.disorder == 0 for stream in streams),
            "streams": len(streams),
            "closed_early": sum(each.closed_early for each in runs),
            "server_cpu_s": sum(
                cpu_seconds(pid) - before
                for pid, before in zip(args.server_pid, cpu_before, strict=True)
            ),
            "client_cpu_s": own_cpu_seconds() - client_cpu_before,
        }
    )
    for each in runs:
        each.abort_all()
    return result


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    run = Run(args.url, "ticks", 1)
    pid = args.server_pid[0]
    # One stream first, so that lazily imported code and caches are in the baseline.
    await run.open("/stream", args.timeout)
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    cpu_before = cpu_seconds(pid)
    seconds, errors = await run.open_many("/stream", args.conns, args.concurrency, args.timeout)
    connect_cpu = cpu_seconds(pid) - cpu_before
    await asyncio.sleep(args.settle)
    after = rss_kib(pid)
    open_streams = sum(not stream.closed for stream in run.streams) - 1
    result = {
        "conns": args.conns,
        "open": open_streams,
        "connect_s": seconds,
        "connect_cpu_s": connect_cpu,
        "connect_errors": errors,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": (after - before) / open_streams if open_streams > 0 else None,
    }
    run.abort_all()
    return result


WORKLOADS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "firehose": firehose,
    "fanout": fanout,
    "idle": idle,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--url", action="append", required=True, help="server base URL(s)")
    parser.add_argument("--out", help="write the JSON result here (default: stdout)")
    parser.add_argument("--server-pid", type=int, action="append", default=[])
    parser.add_argument("--n", type=int, default=50_000, help="firehose events")
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200, help="streams opening at once")
    parser.add_argument("--timeout", type=float, default=60.0, help="per connection / firehose")
    parser.add_argument("--warm-timeout", type=float, default=60.0, help="ends once all are warm")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds after publishing")
    parser.add_argument("--stall", type=float, default=STALL_S, help="stop when idle this long")
    parser.add_argument("--settle", type=float, default=2.0, help="before reading RSS")
    parser.add_argument("--path", default="/stream", help="the stream to subscribe to")
    parser.add_argument("--warm-path", default="/publish?n=1&start=-1", help="publishes a marker")
    parser.add_argument("--publisher-cmd", help="JSON argv of a publisher process (end to end)")
    args = parser.parse_args(argv)
    if args.workload == "firehose":
        args.url = args.url[0]
        args.server_pid = args.server_pid[0] if args.server_pid else None
    elif args.workload == "idle":
        args.url = args.url[0]
    return args


def write_result(result: dict[str, Any], path: str | None) -> None:
    """A workload's result as JSON: into ``path`` (``--out``), or to stdout."""
    text = json.dumps(result, indent=2)
    if path:
        with open(path, "w") as out:
            out.write(text)
    else:
        sys.stdout.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    raise_fd_limit()
    write_result(asyncio.run(asyncio.wait_for(WORKLOADS[args.workload](args), 600)), args.out)


if __name__ == "__main__":
    main()
