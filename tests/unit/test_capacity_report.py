"""The capacity report renders whatever a run measured, also a run where nothing held a step."""

from __future__ import annotations

from typing import Any

from bench import capacity_report


def crossprocess(target: str, first_p99: float | None) -> dict[str, Any]:
    step = {"rate": 1, "p99_s": first_p99, "held": False}
    return {
        "target": target,
        "family": "django_sse" if target.startswith("django_sse") else "recipe",
        "workload": "crossprocess",
        "result": {"subs": 5000, "steps": [step], "ceiling_deliveries_per_s": None},
    }


def test_a_run_whose_first_steps_all_broke_renders_as_not_measured() -> None:
    # A loaded machine: every target broke at its first step, and the recipes lost events
    # before a p99 could be measured (the full run of 2026-12-02 crashed here).
    data = {
        "runs": [
            crossprocess("django_sse, RedisPubSubChannelLayer", 0.724),
            crossprocess("Channels recipe, RedisPubSubChannelLayer", None),
            crossprocess("Channels recipe, RedisChannelLayer", None),
        ]
    }
    rows = {row[0]: row for row in capacity_report.headline(data)}
    first = rows["across processes: p99 at the first step ÷ the best recipe's"]
    assert first[1:] == ["n/a", "≤ 1x", "not measured"]


def test_first_step_p99s_keeps_the_measured_ones() -> None:
    results = [
        crossprocess("django_sse, a", 0.2)["result"],
        crossprocess("django_sse, b", None)["result"],
        {"steps": []},
    ]
    assert capacity_report.first_step_p99s(results) == [0.2]


def saturation(family: str, server: str, subs: int, ceiling: float | None) -> dict[str, Any]:
    step = {"rate": 1, "p99_s": 0.3 if ceiling else 0.9, "held": bool(ceiling)}
    result = {
        "subs": subs,
        "steps": [step],
        "ceiling_rate": 1 if ceiling else None,
        "ceiling_deliveries_per_s": ceiling,
        "ceiling_p99_s": step["p99_s"] if ceiling else None,
        "cpu_s_per_1k": 0.02 if ceiling else None,
        "broke_by": "p99 900 ms at 1/s",
    }
    return {
        "target": f"{family} ({server})",
        "family": family,
        "server": server,
        "workload": "saturation",
        "subs": subs,
        "result": result,
    }


def test_daphne_is_compared_at_its_own_size_and_uvicorn_at_the_full_one() -> None:
    data = {
        "scale": {"subs": 5000, "daphne_subs": 1000},
        "runs": [
            saturation("django_sse", "uvicorn", 5000, 70_000.0),
            saturation("eventstream", "uvicorn", 5000, None),
            saturation("django_sse", "daphne", 5000, None),
            saturation("eventstream", "daphne", 5000, None),
            saturation("django_sse", "daphne", 1000, 6000.0),
            saturation("eventstream", "daphne", 1000, 2000.0),
        ],
    }
    rows = {row[0]: row for row in capacity_report.headline(data)}
    daphne = rows["saturation ceiling ÷ django-eventstream's (both Daphne, 1,000 subscribers)"]
    assert daphne[1:] == ["3.00x", "≥ 5x", "not met"]
    # The anchor held no step at 1/s to 5,000: a lower bound, 70,000 / 5,000.
    uvicorn = rows["saturation ceiling ÷ django-eventstream's (uvicorn)"]
    assert uvicorn[1:] == ["> 14.00x (the anchor held no step)", "≥ 5x", "**met**"]
    table = capacity_report.saturation_table(data, "saturation")
    assert table.count("| 1,000 |") == 2
