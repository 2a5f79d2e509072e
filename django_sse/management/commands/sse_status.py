"""``manage.py sse_status``: the figures of a running deployment, as its metrics have them.

Read from prometheus-client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, shared by
the deployment's processes: run the command on the same machine with the same variable), or
from a metrics endpoint (``--url https://host/metrics``). ``--presence GROUP`` adds who is
subscribed to those groups across every process sharing the channel layer (presence.py).
``--json`` prints the same as JSON, for scripts.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_sse import metrics

Figures = dict[str, dict[str, float]]

# What is printed, in this order: metric family (as parsed, without _total) and its title.
FIGURES = [
    ("django_sse_streams_open", "streams open"),
    ("django_sse_streams_refused", "streams refused"),
    ("django_sse_events_published", "events published"),
    ("django_sse_events_delivered", "events delivered"),
    ("django_sse_subscribers_dropped", "subscribers dropped"),
    ("django_sse_replays", "replays"),
    ("django_sse_resets", "resets"),
    ("django_sse_layer_failures", "layer failures"),
]
LATENCY = "django_sse_publish_to_write_seconds"


def read_families(url: str | None) -> list[Any]:
    """Metric families from ``url``, or from the multiprocess directory."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError as error:  # pragma: no cover - the extra is missing
        raise CommandError("sse_status needs prometheus-client: the [prometheus] extra.") from error
    if url is not None:
        with urllib.request.urlopen(url, timeout=30) as response:
            return list(text_string_to_metric_families(response.read().decode()))
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise CommandError(
            "Nothing to read: set PROMETHEUS_MULTIPROC_DIR to the deployment's metrics directory "
            "or pass --url of a metrics endpoint."
        )
    return list(metrics.registry().collect())


def summarize(families: list[Any]) -> dict[str, Any]:
    """Per figure, its value by label (``""`` without labels); the latency's count and quantiles."""
    figures: Figures = {}
    buckets: list[tuple[float, float]] = []
    latency_sum = latency_count = 0.0
    for family in families:
        for sample in family.samples:
            name = sample.name
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "pid")
            if name.startswith(LATENCY):
                if name.endswith("_bucket"):
                    buckets.append((float(sample.labels["le"]), sample.value))
                elif name.endswith("_sum"):
                    latency_sum += sample.value
                elif name.endswith("_count"):
                    latency_count += sample.value
                continue
            base = name.removesuffix("_total")
            if base.endswith("_created"):
                continue
            if any(base == figure for figure, _ in FIGURES):
                row = figures.setdefault(base, {})
                row[labels] = row.get(labels, 0.0) + sample.value
    return {
        "figures": figures,
        "latency": {
            "count": latency_count,
            "mean": latency_sum / latency_count if latency_count else None,
            "p50": _quantile(buckets, 0.5),
            "p99": _quantile(buckets, 0.99),
        },
    }


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the bucket that holds quantile ``q`` (cumulative buckets, summed)."""
    totals: dict[float, float] = {}
    for bound, value in buckets:
        totals[bound] = totals.get(bound, 0.0) + value
    ordered = sorted(totals.items())
    if not ordered or not ordered[-1][1]:
        return None
    target = q * ordered[-1][1]
    for bound, cumulative in ordered:
        if cumulative >= target:
            return bound
    return None


class Command(BaseCommand):
    help = "Print django_sse's figures (open streams, events, drops, latency) for a deployment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="A metrics endpoint to read instead of the directory.")
        parser.add_argument(
            "--presence", action="append", default=[], metavar="GROUP", help="Repeatable."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        metrics_readable = options["url"] or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if metrics_readable or not options["presence"]:
            status = summarize(read_families(options["url"]))
        else:  # presence alone: no metrics to read
            status = {"figures": {}, "latency": {"count": 0}}
        if options["presence"]:
            from django_sse.live.presence import presence_sync

            status["presence"] = {}
            for group in options["presence"]:
                found = presence_sync(group)
                status["presence"][group] = {"count": found.count, "users": found.user_ids}
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
            return
        for name, title in FIGURES if metrics_readable else ():
            row = status["figures"].get(name, {})
            total = sum(row.values())
            parts = [f"{label} {value:g}" for label, value in sorted(row.items()) if label]
            detail = ", ".join(parts)
            self.stdout.write(f"{title:<22}{total:>12g}" + (f"   ({detail})" if detail else ""))
        latency = status["latency"]
        if latency["count"]:
            self.stdout.write(
                f"{'publish-to-write':<22}{latency['count']:>12g} events"
                f"   (mean {latency['mean']:.4f} s, p50 <= {latency['p50']} s, "
                f"p99 <= {latency['p99']} s)"
            )
        for group, found in status.get("presence", {}).items():
            users = ", ".join(str(user) for user in found["users"])
            line = f"{'presence ' + group:<22}{found['count']:>12g}"
            self.stdout.write(line + (f"   (users {users})" if users else ""))
