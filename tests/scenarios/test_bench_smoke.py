"""The benchmark harness still runs: every workload against every target, at a tiny size.

``python -m bench.run --smoke`` starts every server of ``make bench`` (the anchors too: they are
in the ``bench`` extra, which the test extra includes) with a few connections and events each,
and writes the results and the reports. What is checked is that every measurement ran and
delivered every event; no figure is compared, so a loaded machine changes nothing but the time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[2]
# The smoke run takes about 2 minutes on a quiet 2-core machine; much longer under load.
SMOKE_TIMEOUT = 1800


def run_smoke(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # pytest-django's: the bench apps have their own
    # A fan-out is over once nothing arrived for this long: generous, for a loaded machine.
    env["BENCH_STALL_S"] = "60"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    capacity = json.loads((out / "capacity.json").read_text())
    return results, capacity


def rows(data: dict[str, Any], workload: str) -> list[dict[str, Any]]:
    return [row for row in data["runs"] if row["workload"] == workload]


def check_fanout(row: dict[str, Any]) -> None:
    result = row["result"]
    assert "error" not in result, row
    assert result["not_warm"] == 0, row
    assert result["delivered"] == result["expected_deliveries"] > 0, row


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(SMOKE_TIMEOUT + 120)
def test_every_bench_workload_runs_against_every_target(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not on PATH (the cross-process workloads start one)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " and DJANGO_SSE_REQUIRE_SERVICES=1")
        pytest.skip(message)
    from bench.servers import TARGETS

    results, capacity = run_smoke(tmp_path)
    labels = {target.label for target in TARGETS}

    firehose = rows(results, "firehose")
    assert {row["target"] for row in firehose} == {
        target.label for target in TARGETS if target.family != "eventstream"
    }
    for row in firehose:
        assert row["result"].get("complete"), row
    fanout = rows(results, "fanout")
    assert {row["target"] for row in fanout} == labels
    for row in fanout + rows(results, "e2e") + rows(results, "feeds"):
        check_fanout(row)
    assert len(rows(results, "e2e")) == 1
    assert len(rows(results, "feeds")) == 8  # 2 servers x 2 ways x 2 layers
    for row in rows(results, "idle"):
        assert row["result"]["open"] == row["result"]["conns"], row
    assert {row["target"] for row in rows(results, "idle")} == labels

    saturation = rows(capacity, "saturation")
    assert {row["target"] for row in saturation} == labels
    # The Daphne targets run twice: at the full size and at Daphne's own.
    smaller = capacity["scale"]["daphne_subs"]
    assert sorted(row["target"] for row in saturation if row["subs"] == smaller) == sorted(
        target.label for target in TARGETS if target.server == "daphne"
    )
    crossprocess = rows(capacity, "crossprocess")
    assert len(crossprocess) == 5
    for row in saturation + crossprocess:
        result = row["result"]
        assert "error" not in result, row
        assert result["not_warm"] == 0, row
        first = result["steps"][0]
        assert first["delivered"] == first["expected"] > 0, row
    for row in crossprocess:
        assert row["result"]["steps"][0]["broker_calls_per_publish"] > 0, row
    many = rows(capacity, "manystreams")
    assert {row["family"] for row in many} == {"bare", "django_sse"}
    for row in many:
        result = row["result"]
        assert result["open"] == result["conns"], row
        assert result["delivered"] == result["expected"] > 0, row

    for name in ("RESULTS.md", "CAPACITY.md", "saturation.png", "crossprocess.png"):
        assert (tmp_path / name).stat().st_size > 0, name
