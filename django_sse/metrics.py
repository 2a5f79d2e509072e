"""Prometheus metrics (optional): ``pip install django-eventsource[prometheus]``.

Turned on by ``DJANGO_SSE["METRICS"] = True``. The metrics are registered in
``prometheus_client``'s default registry, so django-prometheus's ``/metrics`` view (or any
exporter of that registry) shows them beside Django's; ``metrics_view`` below serves them
without django-prometheus. Names follow django-prometheus: a ``django_sse_`` prefix,
``_total`` counters, seconds for durations, and labels of bounded cardinality only (a group's
first segment, a reason from a fixed list; never a group name, a user or an address).

Several worker processes (gunicorn/uvicorn workers, several servers on one machine): set the
environment variable ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory that every process of
the deployment shares, before they start (prometheus-client's multiprocess mode). Every process
then writes its figures there; ``metrics_view`` and django-prometheus add them up (open streams
count only live processes), and ``manage.py sse_status`` reads them from there.

The figures (``sse_status`` prints the same):

- ``django_sse_streams_open{stream}``: open event streams, by the first segment of their
  group (``items`` for ``items.item.3``), ``multi`` for multi-group streams and ``generator``
  for views that stream a generator of their own;
- ``django_sse_streams_refused_total{reason}``: ``max_streams`` (503) or ``per_client`` (429);
- ``django_sse_events_published_total{stream}``: publishes from this process;
- ``django_sse_events_delivered_total{stream}``: events handed to local subscribers;
- ``django_sse_subscribers_dropped_total{reason}``: ``lagging`` (``SUBSCRIBER_QUEUE``),
  ``byte_limit`` (``SUBSCRIBER_MAX_BYTES``), ``process_budget`` (``PROCESS_MAX_BYTES``),
  ``layer_failure``; each such client reconnects and resumes by id;
- ``django_sse_replays_total``: subscriptions that started with a ``Last-Event-ID``;
- ``django_sse_resets_total{reason}``: ``reset`` events sent (``gap``, ``trimmed``, ...);
- ``django_sse_layer_failures_total``: times the channel layer failed this process's hub;
- ``django_sse_publish_to_write_seconds``: from ``publish()`` to the moment every local
  subscriber of the event has been woken and has written it (wall clocks of the publishing and
  the serving process: on one machine the same clock).

Off (the default), every recording call is a method of ``_Off`` that does nothing; calls on
the delivery path are made once per event, never once per subscriber.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse

from . import conf

DROP_REASONS = ("lagging", "byte_limit", "process_budget", "layer_failure")
# The publish-to-write histogram's buckets, in seconds: fan-out latency runs from a
# millisecond (a few subscribers) to seconds (thousands on a loaded process).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def stream_label(group: str | None) -> str:
    """The bounded label of a group: its first segment."""
    if group is None:
        return "generator"
    return group.split(".", 1)[0]


class _Off:
    """Metrics turned off: every call is a no-op."""

    enabled = False

    def published(self, group: str) -> None: ...
    def received(self, message: dict[str, Any]) -> None: ...
    def delivered(self, group: str, count: int) -> None: ...
    def woken(self, loop: asyncio.AbstractEventLoop) -> None: ...
    def dropped(self, reason: str, count: int = 1) -> None: ...
    def layer_failed(self, subscribers: int) -> None: ...
    def replayed(self) -> None: ...
    def reset(self, reason: str) -> None: ...
    def refused(self, reason: str) -> None: ...
    def stream_opened(self, label: str) -> None: ...
    def stream_closed(self, label: str) -> None: ...


class Prometheus(_Off):
    """The metrics, in prometheus-client's default registry (created once per process)."""

    enabled = True

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.streams_open = Gauge(
            "django_sse_streams_open",
            "Open event streams, by the first segment of their group.",
            ["stream"],
            multiprocess_mode="livesum",
        )
        self.streams_refused = Counter(
            "django_sse_streams_refused", "Streams refused by a limit.", ["reason"]
        )
        self.events_published = Counter(
            "django_sse_events_published", "Events published by this process.", ["stream"]
        )
        self.events_delivered = Counter(
            "django_sse_events_delivered", "Events handed to local subscribers.", ["stream"]
        )
        self.subscribers_dropped = Counter(
            "django_sse_subscribers_dropped",
            "Subscribers ended early (they reconnect and resume by id).",
            ["reason"],
        )
        self.replays = Counter("django_sse_replays", "Subscriptions resumed with Last-Event-ID.")
        self.resets = Counter("django_sse_resets", "Reset events sent.", ["reason"])
        self.layer_failures = Counter(
            "django_sse_layer_failures", "Channel-layer failures of this process's hub."
        )
        self.latency = Histogram(
            "django_sse_publish_to_write_seconds",
            "Seconds from publish() to the write of the event to every local subscriber.",
            buckets=LATENCY_BUCKETS,
        )
        for reason in DROP_REASONS:  # present at 0, so that rates work from the start
            self.subscribers_dropped.labels(reason)
        # Publish times of the events fanned out since the hub's waker last went idle.
        self._pending: list[float] = []

    def published(self, group: str) -> None:
        self.events_published.labels(stream_label(group)).inc()

    def received(self, message: dict[str, Any]) -> None:
        stamp = message.get("t")
        # Bounded: events that woke nobody (filtered out everywhere) are not waited for.
        if stamp is not None and len(self._pending) < 10_000:
            self._pending.append(stamp)

    def delivered(self, group: str, count: int) -> None:
        if count:
            self.events_delivered.labels(stream_label(group)).inc(count)

    def woken(self, loop: asyncio.AbstractEventLoop) -> None:
        # Called when the hub woke the last subscriber of what it fanned out: their tasks run
        # (and write) in the loop's next turn, before this callback.
        if self._pending:
            stamps, self._pending = self._pending, []
            loop.call_soon(self._observe, stamps)

    def _observe(self, stamps: list[float]) -> None:
        now = time.time()
        for stamp in stamps:
            self.latency.observe(max(0.0, now - stamp))

    def dropped(self, reason: str, count: int = 1) -> None:
        self.subscribers_dropped.labels(reason).inc(count)

    def layer_failed(self, subscribers: int) -> None:
        self.layer_failures.inc()
        self.dropped("layer_failure", subscribers)

    def replayed(self) -> None:
        self.replays.inc()

    def reset(self, reason: str) -> None:
        self.resets.labels(reason).inc()

    def refused(self, reason: str) -> None:
        self.streams_refused.labels(reason).inc()

    def stream_opened(self, label: str) -> None:
        self.streams_open.labels(label).inc()

    def stream_closed(self, label: str) -> None:
        self.streams_open.labels(label).dec()


class _Recorder:
    """The process's recorder, chosen from ``DJANGO_SSE["METRICS"]`` on first use."""

    def __init__(self) -> None:
        self._current: _Off | None = None
        self._prometheus: Prometheus | None = None  # its metrics can be registered only once

    def get(self) -> _Off:
        current = self._current
        if current is None:
            current = self._current = self._choose()
        return current

    def _choose(self) -> _Off:
        if not conf.get("METRICS"):
            return _Off()
        if self._prometheus is None:
            self._prometheus = Prometheus()
        return self._prometheus

    def reset(self, setting: str, **kwargs: Any) -> None:
        if setting == "DJANGO_SSE":
            self._current = None


recorder = _Recorder()
setting_changed.connect(recorder.reset, dispatch_uid="django_sse.metrics.reset")


def record() -> _Off:
    """What records this process's figures (a no-op when metrics are off)."""
    return recorder.get()


def registry() -> Any:
    """The registry to export: every process's figures in multiprocess mode, else this one's."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return collected
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of ``registry()``: ``path("metrics", metrics_view)``."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
