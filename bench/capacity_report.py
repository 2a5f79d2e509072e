"""Turn ``capacity.json`` into ``CAPACITY.md`` and the p99-against-rate plots.

python -m bench.capacity_report [bench/results]    # rewrite the report from capacity.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import fmt, ms, plots_and_environment, ratio, results_folder, table, verdict


def runs(data: dict[str, Any], workload: str) -> list[dict[str, Any]]:
    return [run for run in data["runs"] if run["workload"] == workload]


def ok(result: dict[str, Any]) -> dict[str, Any]:
    return {} if "error" in result else result


def find(data: dict[str, Any], workload: str, family: str, **params: Any) -> dict[str, Any]:
    for run in runs(data, workload):
        if run["family"] == family and all(run.get(k) == v for k, v in params.items()):
            return ok(run["result"])
    return {}


def goal(label: str, value: float | None, target: float, higher: bool = True) -> list[str]:
    op = "≥" if higher else "≤"
    return [label, fmt(value, ".2f", "x"), f"{op} {target:g}x", verdict(value, target, higher)]


def ceiling(result: dict[str, Any]) -> float | None:
    return result.get("ceiling_deliveries_per_s")


def versus(label: str, ours: dict[str, Any], anchor: dict[str, Any], target: float) -> list[str]:
    """Ceiling ratio; when the anchor held no step, a lower bound (it broke below its first)."""
    value = ratio(ceiling(ours), ceiling(anchor))
    if value is not None or not ceiling(ours) or not anchor.get("steps"):
        return goal(label, value, target)
    first = anchor["steps"][0]
    held = ceiling(ours)
    assert held is not None  # checked above
    bound = held / (first["rate"] * anchor["subs"])
    met = "**met**" if bound >= target else "not shown"
    return [label, f"> {bound:.2f}x (the anchor held no step)", f"≥ {target:g}x", met]


def first_step_p99s(results: list[dict[str, Any]]) -> list[float]:
    """The p99 of each result's first step, where it has one (a server may miss it)."""
    return [
        res["steps"][0]["p99_s"]
        for res in results
        if res.get("steps") and res["steps"][0].get("p99_s") is not None
    ]


def headline(data: dict[str, Any]) -> list[list[str]]:
    rows = []

    def sat(family: str, server: str, subs: int | None = None) -> dict[str, Any]:
        return find(data, "saturation", family, server=server, **({"subs": subs} if subs else {}))

    daphne_subs = data.get("scale", {}).get("daphne_subs")
    ours_u = sat("django_sse", "uvicorn")
    ours_d = sat("django_sse", "daphne", daphne_subs)
    rows.append(
        versus("saturation ceiling ÷ bare-ASGI hub's (uvicorn)", ours_u, sat("bare", "uvicorn"), 1)
    )
    rows.append(
        versus(
            "saturation ceiling ÷ sse-starlette's (uvicorn)", ours_u, sat("starlette", "uvicorn"), 2
        )
    )
    rows.append(
        versus(
            "saturation ceiling ÷ django-eventstream's (uvicorn)",
            ours_u,
            sat("eventstream", "uvicorn"),
            5,
        )
    )
    fewer = f", {daphne_subs:,} subscribers" if daphne_subs else ""
    rows.append(
        versus(
            f"saturation ceiling ÷ django-eventstream's (both Daphne{fewer})",
            ours_d,
            sat("eventstream", "daphne", daphne_subs),
            5,
        )
    )
    cross = {run["target"]: ok(run["result"]) for run in runs(data, "crossprocess")}
    ours = [res for name, res in cross.items() if name.startswith("django_sse") and res]
    recipes = [res for name, res in cross.items() if name.startswith("Channels recipe") and res]
    if ours and recipes:
        best_ours = max(ours, key=lambda res: ceiling(res) or 0)
        best_recipe = max(recipes, key=lambda res: ceiling(res) or 0)
        first = first_step_p99s(ours)
        first_recipe = first_step_p99s(recipes)
        rows.append(
            goal(
                "across processes: p99 at the first step ÷ the best recipe's",
                ratio(min(first, default=None), min(first_recipe, default=None)),
                1,
                higher=False,
            )
        )
        rows.append(
            versus("across processes: ceiling ÷ the best recipe's", best_ours, best_recipe, 2)
        )
    else:
        rows.append(["across processes", "n/a", "", "not measured"])
    many = find(data, "manystreams", "django_sse")
    bare = find(data, "manystreams", "bare")
    if many:
        errors = sum(many["connect_errors"].values()) + many["not_warm"]
        clean = errors == 0 and many["open"] == many["conns"]
        rows.append(
            [
                f"{many['conns']:,} streams in one process (uvicorn)",
                f"{many['open']:,} open, {errors} errors",
                "no error",
                "**met**" if clean else "not met",
            ]
        )
        rows.append(
            goal(
                "many streams: connect time ÷ bare's",
                ratio(many.get("connect_s"), bare.get("connect_s")),
                1.5,
                higher=False,
            )
        )
        complete = many["complete_subs"] == many["streams"]
        rows.append(
            [
                f"many streams: fan-out to all {many['streams']:,}",
                f"{many['complete_subs']:,} complete, p99 {ms(many['p99_s'])}",
                "completes",
                "**met**" if complete else "not met",
            ]
        )
    return rows


def saturation_table(data: dict[str, Any], workload: str) -> str:
    rows = []
    for run in runs(data, workload):
        res = run["result"]
        if "error" in res:
            rows.append([run["target"], f"{run['subs']:,}", *["n/a"] * 6, res["error"][:120]])
            continue
        steps = res["steps"]
        rows.append(
            [
                run["target"],
                f"{run['subs']:,}",
                fmt(res["ceiling_rate"], ",d", "/s"),
                fmt(res["ceiling_deliveries_per_s"]),
                ms(res["ceiling_p99_s"]),
                fmt(res["cpu_s_per_1k"], ".3f", " s"),
                fmt(res.get("broker_calls_per_publish"), ",.1f"),
                f"{len(steps)} (last {steps[-1]['rate']:,}/s)" if steps else "0",
                res["broke_by"],
            ]
        )
    header = [
        "target",
        "subscribers",
        "highest rate held",
        "deliveries/s",
        "p99 there",
        "server CPU per 1k deliveries",
        "Redis commands per publish",
        "steps",
        "broke by",
    ]
    return table(header, rows)


def many_table(data: dict[str, Any]) -> str:
    rows = []
    for run in runs(data, "manystreams"):
        res = run["result"]
        if "error" in res:
            rows.append([run["target"], *["n/a"] * 6, res["error"][:120]])
            continue
        errors = sum(res["connect_errors"].values())
        rows.append(
            [
                run["target"],
                f"{res['open']:,}/{res['conns']:,}",
                fmt(res["connect_s"], ".1f", " s") + f" (CPU {res['connect_cpu_s']:.1f} s)",
                fmt(res["kib_per_stream"], ".1f", " KiB"),
                f"{res['complete_subs']:,}/{res['streams']:,}",
                ms(res["p99_s"]),
                f"{errors} errors {res['connect_errors']}" if errors else "",
            ]
        )
    header = ["target", "open", "connect all", "RSS per stream", "fan-out complete", "p99", "note"]
    return table(header, rows)


def plots(data: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for workload, title in (
        ("saturation", "saturation: p99 against offered rate (one process)"),
        ("crossprocess", "across processes (Redis): p99 against offered rate"),
    ):
        chosen = [run for run in runs(data, workload) if ok(run["result"]).get("steps")]
        if not chosen:
            continue
        fig, ax = plt.subplots(figsize=(8, 5))
        # More lines than the default cycle's ten colours: one of twenty each, and the smaller
        # size (Daphne's second run) dashed.
        tab20 = plt.get_cmap("tab20")
        largest = max(run["result"]["subs"] for run in chosen)
        for index, run in enumerate(chosen):
            steps = run["result"]["steps"]
            subs = run["result"]["subs"]
            x = [step["rate"] * subs for step in steps]
            y = [(step["p99_s"] or 0) * 1000 for step in steps]
            width = 2.5 if run["family"] == "django_sse" else 1.2
            label = f"{run['target']}, {subs:,} subscribers"
            style = "-" if subs == largest else "--"
            colour = tab20(index % tab20.N)
            ax.plot(x, y, style, color=colour, marker="o", linewidth=width, label=label)
        ax.axhline(500, color="red", linestyle=":", linewidth=1, label="p99 limit (500 ms)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered deliveries/s (subscribers x publish rate)")
        ax.set_ylabel("p99 publish-to-receipt, ms")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"{workload}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def render(data: dict[str, Any], images: list[str]) -> str:
    env = data["environment"]
    scale = data["scale"]
    parts = [
        "# Capacity: ceilings, many streams, across processes",
        "",
        f"Run {data['started']} ({data.get('size', 'full')} size); written by `make bench` "
        "(`bench/capacity.py`). Every figure comes from this one run on this machine: the ratios "
        "are the result.",
        "",
        "## Goals (issue 15)",
        "",
        table(["goal", "measured", "target", "verdict"], headline(data)),
        "",
        f"## Saturation: {scale['subs']:,} subscribers, one server process",
        "",
        f"Every target with {scale['subs']:,} subscribers; the Daphne ones also with "
        f"{scale.get('daphne_subs', 0):,}, where they can hold a step.",
        "",
        f"The publish rate starts at {scale['start_rate']}/s and is stepped up x1.5 every "
        f"{scale['step_s']:g} s of publishing until p99 publish-to-receipt exceeds 500 ms or a "
        "subscriber misses an event (or sees one out of order). A tick's latency counts from the "
        "earlier of its stamp and its place in the schedule, so a server too busy to publish on "
        "time is not credited with the rate it was offered. The highest rate that held is the "
        "ceiling; deliveries/s and server CPU are that step's.",
        "",
        saturation_table(data, "saturation"),
        "",
        f"## Across processes: {scale['subs']:,} subscribers on one uvicorn process, the "
        "publisher on another, one private Redis",
        "",
        "The same steps. django_sse keeps a replay log in Redis Streams (the recipes have no "
        "replay). Redis commands per publish: `INFO commandstats` deltas over the ceiling step "
        "(every command, both processes), divided by the events published.",
        "",
        saturation_table(data, "crossprocess"),
        "",
    ]
    many = runs(data, "manystreams")
    if many:
        res = many[0]["result"]
        parts += [
            f"## Many streams: {many[0]['conns']:,} in one uvicorn process",
            "",
            f"The fd hard limit here is {res.get('fd_hard_limit', 'unknown'):,} per process, so "
            "that is as many as one process (server or client) can hold. The client spreads its "
            "connections over 8 loopback source addresses (127.0.0.1-8). RSS per stream: the "
            "server's VmRSS after all streams are open minus before; then 3 events at 1/s to all.",
            "",
            many_table(data),
            "",
        ]
    parts += plots_and_environment(images, env, env["python"])
    return "\n".join(parts)


def write(data: dict[str, Any], out: Path) -> None:
    images = plots(data, out)
    (out / "CAPACITY.md").write_text(render(data, images))


def main(argv: list[str] | None = None) -> None:
    out = results_folder(argv)
    write(json.loads((out / "capacity.json").read_text()), out)


if __name__ == "__main__":
    main()
