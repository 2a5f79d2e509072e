"""Run every workload against every target, in one run, and write ``bench/results/``.

    python -m bench.run                 # the full run (about 15 minutes on 2 cores)
    python -m bench.run --quick         # smaller counts, for iterating
    python -m bench.run --only django_sse,bare --workloads firehose,fanout
    python -m bench.run --quick --workloads saturation,crossprocess,manystreams
    python -m bench.run --smoke --out /tmp/smoke   # every workload at a tiny size (make test)

Each (workload, target) pair gets a fresh server process, so memory and CPU figures are its own.
The load client runs as a separate process; results go to ``results.json``, from which
``bench.report`` writes ``RESULTS.md`` and the plots. The capacity workloads (``bench.capacity``:
saturation, crossprocess, manystreams) go to ``capacity.json``, ``CAPACITY.md`` and their plots
(``bench.capacity_report``), so that running them alone leaves the other results in place.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import capacity, capacity_report, report, servers, shared_feeds
from bench.servers import ROOT, TARGETS, Target

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Scale:
    firehose: int
    fanout: tuple[tuple[int, int, int], ...]  # (subscribers, events, events per second)
    idle: int
    e2e: tuple[int, int, int]


FULL = Scale(50_000, ((1000, 200, 20), (5000, 100, 10), (5000, 200, 20)), 10_000, (1000, 100, 20))
QUICK = Scale(10_000, ((200, 40, 20), (1000, 30, 10)), 1000, (200, 40, 20))
# A few connections and events per target: proves the harness runs
# (tests/scenarios/test_bench_smoke.py).
SMOKE = Scale(50, ((3, 5, 5),), 3, (3, 5, 5))


def client(args: list[str], timeout: float) -> dict[str, Any]:
    return servers.run_client("bench.client", args, timeout)


def measure(target: Target, workload: str, args: list[str], log_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    try:
        server = servers.start(target, log_dir)
    except RuntimeError as exc:
        return {"error": str(exc).splitlines()[0]}
    try:
        pid = str(server.pid)
        result = client([workload, "--url", server.url, "--server-pid", pid, *args], 900)
    finally:
        server.stop()
    result["wall_s"] = time.monotonic() - started
    return result


def run_e2e(scale: Scale, log_dir: Path) -> dict[str, Any]:
    """Model save -> clients through Redis, django_sse on two uvicorn processes."""
    from bench import e2e

    redis = servers.Redis()
    url = redis.start()
    if url is None:
        return {"error": "redis-server is not installed: end-to-end skipped"}
    try:
        return e2e.run(url, scale.e2e, log_dir)
    finally:
        redis.stop()


def log(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for iterating")
    parser.add_argument("--smoke", action="store_true", help="tiny counts: does it all run?")
    parser.add_argument("--only", help="comma-separated app families: " + ", ".join(
        sorted({t.family for t in TARGETS})))  # fmt: skip
    parser.add_argument(
        "--workloads", default="firehose,fanout,idle,e2e,feeds," + ",".join(capacity.WORKLOADS)
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    size = "smoke" if args.smoke else "quick" if args.quick else "full"
    scale = {"smoke": SMOKE, "quick": QUICK, "full": FULL}[size]
    only = set(args.only.split(",")) if args.only else None
    workloads = args.workloads.split(",")
    targets = [t for t in TARGETS if only is None or t.family in only]
    servers.raise_fd_limit()
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": size != "full",
        "size": size,
        "scale": scale.__dict__,
        "environment": report.environment(),
        "runs": [],
    }
    capacity_results: dict[str, Any] = {
        **results,
        "scale": capacity.SIZES[size].__dict__,
        "runs": [],
    }

    def record(target: Target | None, workload: str, params: dict[str, Any], result: Any) -> None:
        into, name = results, "results.json"
        if workload in capacity.WORKLOADS:
            into, name = capacity_results, "capacity.json"
        row = {
            "target": target.label if target else "django_sse e2e",
            "family": target.family if target else "django_sse",
            "server": target.server if target else "uvicorn",
            "workload": workload,
            **params,
            "result": result,
        }
        into["runs"].append(row)
        brief = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
        log(f"  {row['target']:<32} {json.dumps(brief)[:220]}")
        # Written after every measurement: a long run that is interrupted still leaves data.
        (args.out / name).write_text(json.dumps(into, indent=1))

    if "firehose" in workloads:
        log(f"firehose: one stream of {scale.firehose:,} events")
        for target in targets:
            if target.family != "eventstream":  # its streams carry published events only
                result = measure(target, "firehose", ["--n", str(scale.firehose)], log_dir)
                record(target, "firehose", {"n": scale.firehose}, result)
    if "fanout" in workloads:
        for subs, events, rate in scale.fanout:
            log(f"fan-out: {subs:,} subscribers, {events} events at {rate}/s")
            params = ["--subs", str(subs), "--events", str(events), "--rate", str(rate)]
            for target in targets:
                result = measure(target, "fanout", params, log_dir)
                record(target, "fanout", {"subs": subs, "events": events, "rate": rate}, result)
    if "idle" in workloads:
        log(f"idle: {scale.idle:,} open streams")
        for target in targets:
            settle = ["--settle", "0.2"] if args.smoke else []  # RSS is not the smoke's point
            result = measure(target, "idle", ["--conns", str(scale.idle), *settle], log_dir)
            record(target, "idle", {"conns": scale.idle}, result)
    if "e2e" in workloads and (only is None or "django_sse" in only):
        subs, events, rate = scale.e2e
        log(f"end to end: model save -> Redis -> 2 processes -> {subs:,} clients")
        record(None, "e2e", {"subs": subs, "events": events, "rate": rate}, run_e2e(scale, log_dir))
    if "feeds" in workloads:
        shared_feeds.run(targets, size, log_dir, record)
    capacity.run(workloads, targets, size, log_dir, record)
    finished = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if results["runs"]:
        results["finished"] = finished
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
        report.write(results, args.out)
        log(f"wrote {os.path.relpath(args.out / 'RESULTS.md')}")
    if capacity_results["runs"]:
        capacity_results["finished"] = finished
        (args.out / "capacity.json").write_text(json.dumps(capacity_results, indent=1))
        capacity_report.write(capacity_results, args.out)
        log(f"wrote {os.path.relpath(args.out / 'CAPACITY.md')}")
    log(f"server logs: {log_dir}")


if __name__ == "__main__":
    main()
