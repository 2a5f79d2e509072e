"""Metrics of the hub in-process: a failing channel layer counts one failure and its drops."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from prometheus_client import REGISTRY

from django_sse import metrics
from django_sse.live import heartbeat
from django_sse.live.hub import Hub
from tests.support.waiting import until_async as until
from tests.unit.test_hub_failures import FlakyLayer, Recorder


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "HEARTBEAT_INTERVAL", 0.02)


async def test_a_layer_failure_counts_once_and_drops_each_subscriber() -> None:
    with override_settings(DJANGO_SSE={**settings.DJANGO_SSE, "METRICS": True}):
        assert metrics.record().enabled
        failures = sample("django_sse_layer_failures_total")
        dropped = sample("django_sse_subscribers_dropped_total", reason="layer_failure")
        layer = FlakyLayer()
        hub = Hub(layer)
        subscribers = [Recorder(), Recorder()]
        for subscriber in subscribers:
            await hub.join("g", subscriber)
        layer.lose_heartbeats = 1
        await until(lambda: all(s.ended for s in subscribers))
        assert sample("django_sse_layer_failures_total") == failures + 1
        assert sample("django_sse_subscribers_dropped_total", reason="layer_failure") == dropped + 2
        await until(lambda: hub.stats()["tasks"] == 0)
    # Off again with the setting: every call is the no-op recorder's.
    assert not metrics.record().enabled
