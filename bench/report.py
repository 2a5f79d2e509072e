"""Turn ``results.json`` into ``RESULTS.md`` and PNG plots: ratios first, absolutes after.

python -m bench.report [bench/results]    # rewrite the report from the last results.json
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = [
    "django-eventsource",
    "Django",
    "channels",
    "channels-redis",
    "pydantic",
    "uvicorn",
    "daphne",
    "Twisted",
    "httptools",
    "sse-starlette",
    "starlette",
    "fastapi",
    "django-eventstream",
]


def environment() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    try:
        redis = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[2]
    except (OSError, IndexError):
        redis = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "commit": commit,
        "redis-server": redis,
        "packages": versions,
    }


class Results:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.runs: list[dict[str, Any]] = data["runs"]

    def find(self, workload: str, family: str, server: str, **params: Any) -> dict[str, Any]:
        for run in self.runs:
            key = (run["workload"], run["family"], run["server"])
            if key == (workload, family, server) and all(
                run.get(k) == v for k, v in params.items()
            ):
                result: dict[str, Any] = run["result"]
                return result
        return {}

    def value(self, workload: str, family: str, server: str, key: str, **params: Any) -> Any:
        result = self.find(workload, family, server, **params)
        return None if "error" in result else result.get(key)

    def sizes(self) -> list[tuple[int, int, int]]:
        return [(subs, events, rate) for subs, events, rate in self.data["scale"]["fanout"]]


def kept_up(res: dict[str, Any]) -> bool:
    """Every subscriber got every event within a second of the last publish."""
    if not res or "error" in res:
        return False
    publishing = res["events"] / res["rate"]
    return bool(res["complete_subs"] == res["streams"] and res["span_s"] <= publishing + 1.0)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: Any, spec: str = ",.0f", suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float | int):
        return format(value, spec) + suffix
    return str(value)


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f} ms"


def verdict(value: float | None, goal: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value >= goal if higher_is_better else value <= goal
    return "**met**" if met else "not met"


def headline(r: Results) -> list[list[str]]:
    rows: list[list[str]] = []

    def add(
        label: str, value: float | None, goal: float, higher: bool = True, unit: str = "x"
    ) -> None:
        op = "≥" if higher else "≤"
        shown = fmt(value, ".2f", unit) if unit == "x" else fmt(value, ".1f", unit)
        rows.append([label, shown, f"{op} {goal:g}{unit}", verdict(value, goal, higher)])

    fire = {
        family: r.value("firehose", family, "uvicorn", "events_per_s")
        for family in ("django_sse", "starlette", "fastapi", "bare")
    }
    ours = fire["django_sse"]
    add("firehose events/s ÷ sse-starlette (uvicorn)", ratio(ours, fire["starlette"]), 2)
    add("firehose events/s ÷ FastAPI sse (uvicorn)", ratio(fire["django_sse"], fire["fastapi"]), 5)
    add("firehose events/s ÷ bare ASGI (uvicorn)", ratio(fire["django_sse"], fire["bare"]), 0.8)
    for subs, events, rate in r.sizes():
        p = {"subs": subs, "events": events, "rate": rate}

        def run(family: str, server: str, p: dict[str, int] = p) -> dict[str, Any]:
            found = r.find("fanout", family, server, **p)
            return {} if "error" in found else found

        def deliveries(
            label: str, ours: dict[str, Any], anchor: dict[str, Any], goal: float
        ) -> None:
            value = ratio(ours.get("deliveries_per_s"), anchor.get("deliveries_per_s"))
            row = [label, fmt(value, ".2f", "x"), f"≥ {goal:g}x", verdict(value, goal)]
            if value is not None and kept_up(ours) and kept_up(anchor):
                # Both delivered everything as fast as it was published: the offered load, not
                # the server, set the rate, so the ratio says nothing beyond "both kept up".
                row[3] = (
                    "**met** (both kept up)" if goal <= 1 else "not distinguishable: both kept up"
                )
            rows.append(row)

        def cpu_per_delivery(res: dict[str, Any]) -> float | None:
            return ratio(res.get("server_cpu_s"), res.get("delivered"))

        ours, ours_d = run("django_sse", "uvicorn"), run("django_sse", "daphne")
        bare, es = run("bare", "uvicorn"), run("eventstream", "daphne")
        deliveries(
            f"fan-out {subs:,} x {rate}/s: deliveries/s ÷ bare-ASGI hub (uvicorn)", ours, bare, 1
        )
        deliveries(
            f"fan-out {subs:,} x {rate}/s: deliveries/s ÷ django-eventstream (daphne)",
            ours_d,
            es,
            3,
        )
        add(
            f"fan-out {subs:,} x {rate}/s: p99 ÷ sse-starlette's (uvicorn)",
            ratio(ours.get("p99_s"), run("starlette", "uvicorn").get("p99_s")),
            1,
            False,
        )
        for label, mine, anchor in (
            ("bare-ASGI hub (uvicorn)", ours, bare),
            ("django-eventstream (daphne)", ours_d, es),
        ):
            value = ratio(cpu_per_delivery(anchor), cpu_per_delivery(mine))
            rows.append(
                [
                    f"fan-out {subs:,} x {rate}/s: server CPU per delivery, {label} ÷ django_sse",
                    fmt(value, ".2f", "x"),
                    "(capacity; no goal)",
                    "",
                ]
            )
    idle = r.find("idle", "django_sse", "uvicorn")
    add("idle memory per stream, KiB (uvicorn)", idle.get("kib_per_conn"), 16, False, " KiB")
    if idle and "error" not in idle:
        clean = idle["open"] == idle["conns"] and not idle["connect_errors"]
        rows.append(
            [
                f"{idle['conns']:,} concurrent streams in one process (uvicorn)",
                f"{idle['open']:,} open, {sum(idle['connect_errors'].values())} errors",
                "10,000, no error",
                "**met**"
                if clean and idle["conns"] >= 10_000
                else "not met"
                if not clean
                else f"clean at {idle['conns']:,} (quick run)",
            ]
        )
    else:
        rows.append(["10,000 concurrent streams (uvicorn)", "n/a", "no error", "not measured"])
    subs, events, rate = r.sizes()[-1]
    p = {"subs": subs, "events": events, "rate": rate}
    add(
        f"Daphne: time to connect {subs:,} streams ÷ Django hub's",
        ratio(
            r.value("fanout", "django_sse", "daphne", "connect_s", **p),
            r.value("fanout", "hub", "daphne", "connect_s", **p),
        ),
        1,
        False,
    )
    add(
        f"Daphne: server CPU to connect {subs:,} streams ÷ Django hub's",
        ratio(
            r.value("fanout", "django_sse", "daphne", "connect_cpu_s", **p),
            r.value("fanout", "hub", "daphne", "connect_cpu_s", **p),
        ),
        1,
        False,
    )
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def labels(r: Results, workload: str, **params: Any) -> list[dict[str, Any]]:
    return [
        run
        for run in r.runs
        if run["workload"] == workload and all(run.get(k) == v for k, v in params.items())
    ]


def firehose_table(r: Results) -> str:
    rows = []
    for run in labels(r, "firehose"):
        res = run["result"]
        ours = r.value("firehose", "django_sse", run["server"], "events_per_s")
        rate = None if "error" in res else res.get("events_per_s")
        rows.append(
            [
                run["target"],
                fmt(rate),
                fmt(res.get("server_cpu_s"), ".2f", " s"),
                fmt(ratio(ours, rate), ".2f", "x"),
                res.get("error", "")
                or ("" if res.get("complete") else f"only {res.get('events')} events"),
            ]
        )
    return table(["target", "events/s", "server CPU", "django_sse ÷ this", "note"], rows)


def fanout_note(res: dict[str, Any], errors: int) -> str:
    notes = []
    if errors:
        notes.append(f"{errors} connect errors")
    if res["not_warm"]:
        notes.append(f"{res['not_warm']} never subscribed")
    if res["closed_early"]:
        notes.append(f"{res['closed_early']} closed early")
    return ", ".join(notes)


def fanout_table(r: Results, subs: int, events: int, rate: int) -> str:
    rows = []
    for run in labels(r, "fanout", subs=subs, events=events, rate=rate):
        res = run["result"]
        if "error" in res:
            rows.append([run["target"], *["n/a"] * 8, res["error"][:120]])
            continue
        per_k = ratio(res["server_cpu_s"] * 1000, res["delivered"] / 1000)
        errors = sum(res["connect_errors"].values())
        rows.append(
            [
                run["target"],
                fmt(res["connect_s"], ".1f", " s")
                + (f" (CPU {res['connect_cpu_s']:.1f} s)" if "connect_cpu_s" in res else ""),
                fmt(res["deliveries_per_s"]),
                ms(res["p50_s"]),
                ms(res["p99_s"]),
                ms(res["max_s"]),
                f"{res['complete_subs']:,}/{res['streams']:,}",
                f"{res['in_order_subs']:,}",
                fmt(per_k, ".0f", " ms"),
                fanout_note(res, errors),
            ]
        )
    return table(
        [
            "target",
            "connect",
            "deliveries/s",
            "p50",
            "p99",
            "max",
            "complete",
            "in order",
            "server CPU per 1k deliveries",
            "note",
        ],
        rows,
    )


def idle_table(r: Results) -> str:
    rows = []
    for run in labels(r, "idle"):
        res = run["result"]
        if "error" in res:
            rows.append([run["target"], "n/a", "n/a", "n/a", "n/a", res["error"][:120]])
            continue
        errors = sum(res["connect_errors"].values())
        rows.append(
            [
                run["target"],
                f"{res['open']:,}/{res['conns']:,}",
                fmt(res["kib_per_conn"], ".1f", " KiB"),
                fmt(res["connect_s"], ".1f", " s"),
                fmt(res.get("connect_cpu_s"), ".1f", " s"),
                f"{errors} errors: {res['connect_errors']}" if errors else "",
            ]
        )
    header = ["target", "open", "memory per stream", "time to connect all", "server CPU", "note"]
    return table(header, rows)


def e2e_table(r: Results) -> str:
    rows = []
    for run in labels(r, "e2e"):
        res = run["result"]
        if "error" in res:
            rows.append([run["target"], *["n/a"] * 5, res["error"][:160]])
            continue
        rows.append(
            [
                run["target"],
                f"{run['subs']:,}",
                ms(res["p50_s"]),
                ms(res["p99_s"]),
                ms(res["max_s"]),
                f"{res['complete_subs']:,}/{res['streams']:,}",
                res.get("note", ""),
            ]
        )
    return table(["target", "clients", "p50", "p99", "max", "complete", "note"], rows)


def plots(r: Results, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def bars(ax: Any, runs: list[dict[str, Any]], key: str, scale: float, title: str) -> None:
        names = [run["target"].replace(" (", "\n(") for run in runs]
        values = [(run["result"].get(key) or 0) * scale for run in runs]
        colors = ["tab:green" if run["family"] == "django_sse" else "tab:gray" for run in runs]
        ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)

    runs = labels(r, "firehose")
    if runs:
        fig, ax = plt.subplots(figsize=(7, 4))
        bars(ax, runs, "events_per_s", 1, f"firehose: events/s, one stream of {runs[0]['n']:,}")
        save(fig, "firehose.png")
    sizes = r.sizes()
    if labels(r, "fanout"):
        fig, axes = plt.subplots(2, len(sizes), figsize=(5 * len(sizes), 7), squeeze=False)
        for column, (subs, events, rate) in enumerate(sizes):
            runs = labels(r, "fanout", subs=subs, events=events, rate=rate)
            bars(
                axes[0][column],
                runs,
                "deliveries_per_s",
                1,
                f"fan-out {subs:,} subs x {rate}/s: deliveries/s",
            )
            bars(
                axes[1][column],
                runs,
                "p99_s",
                1000,
                f"fan-out {subs:,} x {rate}/s: p99 latency, ms (log)",
            )
            axes[1][column].set_yscale("log")  # one slow anchor would flatten all the others
        save(fig, "fanout.png")
    runs = labels(r, "idle")
    if runs:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        bars(axes[0], runs, "kib_per_conn", 1, f"idle {runs[0]['conns']:,}: KiB per stream")
        bars(axes[1], runs, "connect_s", 1, "time to connect them all, s")
        save(fig, "idle.png")
    return written


def render(data: dict[str, Any], images: list[str]) -> str:
    r = Results(data)
    env = data["environment"]
    scale = data["scale"]
    parts = [
        "# Benchmarks: django_sse and the anchors",
        "",
        f"Run {data['started']}{' (quick: reduced counts)' if data['quick'] else ''}; "
        "written by `make bench` (`bench/run.py`). Every figure comes from this one run on this "
        "machine: absolute numbers drift on a shared machine, the ratios are the result.",
        "",
        "## Headline: django_sse against the issue's targets",
        "",
        table(["target", "measured", "goal", "verdict"], headline(r)),
        "",
        f"## Firehose: one stream of {scale['firehose']:,} typed (pydantic) events",
        "",
        firehose_table(r),
        "",
    ]
    for subs, events, rate in r.sizes():
        parts += [
            f"## Fan-out: {subs:,} subscribers, {events} events published at {rate}/s",
            "",
            "Latency is publish-to-receipt (the publisher stamps each event with the system-wide "
            "monotonic clock). Deliveries/s: events received by all subscribers together, divided "
            "by the time from the first publish to the last receipt, or by the publishing time "
            "when that is longer (a server that stalls after a first burst is not credited with "
            "that burst's rate). Complete: subscribers that got every event; in order: without a "
            "gap or reordering.",
            "",
            fanout_table(r, subs, events, rate),
            "",
        ]
    parts += [
        f"## Idle: {scale['idle']:,} open streams",
        "",
        "Memory is the server process's VmRSS after all streams are open minus before, per stream.",
        "",
        idle_table(r),
        "",
    ]
    if labels(r, "e2e"):
        subs, events, rate = scale["e2e"]
        parts += [
            f"## End to end: model save → Redis → two server processes → {subs:,} clients",
            "",
            f"{events} saves at {rate}/s in a separate process; clients split over two uvicorn "
            "processes sharing `RedisPubSubChannelLayer`; latency from before `save()` to receipt.",
            "",
            e2e_table(r),
            "",
        ]
    servers = (
        "- Servers: uvicorn with `--loop asyncio --http httptools`; Daphne defaults. One server "
        "process per measurement (two for end to end), started fresh; load client in its own "
        "process (asyncio + httptools, raw sockets)."
    )
    parts += plots_and_environment(images, env, f"{env['python']} on {env['platform']}", servers)
    return "\n".join(parts)


def plots_and_environment(
    images: list[str], env: dict[str, Any], python: str, *notes: str
) -> list[str]:
    """The sections that end every report: its plots, and the machine and versions measured."""
    versions = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    return [
        "## Plots",
        "",
        *(f"![{name}]({name})" for name in images),
        "",
        "## Environment",
        "",
        f"- CPU: {env['cpu']}, {env['cores']} cores; load average at start "
        f"{', '.join(f'{x:.2f}' for x in env['load_average'])} (other work shares this machine)",
        f"- Python {python}; commit {env['commit'] or 'unknown'}; "
        f"redis-server {env['redis-server']}",
        f"- Packages: {versions}",
        *notes,
        "",
    ]


def write(data: dict[str, Any], out: Path) -> None:
    images = plots(Results(data), out)
    (out / "RESULTS.md").write_text(render(data, images))


def results_folder(argv: list[str] | None) -> Path:
    """The folder named on the command line, else bench/results."""
    args = sys.argv[1:] if argv is None else argv
    return Path(args[0]) if args else Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    out = results_folder(argv)
    write(json.loads((out / "results.json").read_text()), out)


if __name__ == "__main__":
    main()
