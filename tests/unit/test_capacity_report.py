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
