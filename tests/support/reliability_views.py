"""Test-only views for the reliability tests (churn, frozen clients, Redis restarts).

``/test/rel/stats`` reports the hub's snapshot, the channel layer's own bookkeeping (group
memberships and channel queues of this event loop), the loop's tasks and the process's RSS, so a
test can prove from outside that disconnected clients left nothing behind.
``/test/rel/publish`` publishes from inside the server (the in-memory layer lives there) and
stamps each event with ``time.monotonic()``, one clock for every process on Linux, so a client
can measure publish-to-receipt latency.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import time
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path

from django_sse import publish, publish_sync
from django_sse.live.budget import process_budget
from django_sse.live.groups import layer_group
from django_sse.live.hub import get_hub
from django_sse.live.subscription import latest_event_id
from django_sse.live.views import SubscriptionView


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _trim() -> None:
    # glibc keeps freed arenas mapped; give them back so RSS shows what is really still in use.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _layer_state(layer: Any, prefix: str) -> dict[str, int]:
    """Group memberships and channel queues the layer keeps for this loop (in-memory, pubsub)."""
    inner = layer
    if hasattr(layer, "_get_layer"):  # RedisPubSubChannelLayer: one inner layer per loop
        inner = layer._get_layer()
    groups = getattr(inner, "groups", None)
    channels = getattr(inner, "channels", None)
    memberships = 0
    if isinstance(groups, dict):
        memberships = sum(len(members) for name, members in groups.items() if prefix in name)
    return {
        "memberships": memberships,
        "channels": len(channels) if isinstance(channels, dict) else -1,
    }


async def stats(request: HttpRequest) -> JsonResponse:
    if request.GET.get("gc"):
        gc.collect()
        _trim()
    hub = get_hub()
    current = asyncio.current_task()
    prefix = layer_group("x")[: -len("x")]
    return JsonResponse(
        {
            "hub": hub.stats(),
            "layer": _layer_state(hub.layer, prefix),
            # Every task of the server's loop except the one serving this request.
            "tasks": len([t for t in asyncio.all_tasks() if t is not current]),
            "rss_kib": _rss_kib(),
            "budget": process_budget().stats(),
        }
    )


async def publish_view(request: HttpRequest) -> JsonResponse:
    """Publish ``n`` events ``{"seq", "t", "pad"}`` to ``group``; a failure is a 503 naming it."""
    group = request.GET.get("group", "rel")
    count = int(request.GET.get("n", "1"))
    start = int(request.GET.get("seq", "0"))
    # Padding makes events big enough to fill socket buffers in a few hundred events.
    pad = "p" * int(request.GET.get("pad", "0"))
    ids: list[str] = []
    try:
        for seq in range(start, start + count):
            ids.append(await publish(group, {"seq": seq, "t": time.monotonic(), "pad": pad}))
    except Exception as exc:
        return JsonResponse({"ids": ids, "error": f"{type(exc).__name__}: {exc}"}, status=503)
    return JsonResponse({"ids": ids})


async def newest_view(request: HttpRequest) -> JsonResponse:
    """The replay log's newest id of ``group`` (a read: retried once on a stale connection)."""
    return JsonResponse({"id": await latest_event_id(request.GET.get("group", "rel"))})


def publish_sync_view(request: HttpRequest) -> JsonResponse:
    """A sync view (run in the server's worker thread) that publishes ``n`` events."""
    group = request.GET.get("group", "rel")
    start = int(request.GET.get("seq", "0"))
    count = int(request.GET.get("n", "1"))
    ids = [
        publish_sync(group, {"seq": seq, "t": time.monotonic()})
        for seq in range(start, start + count)
    ]
    return JsonResponse({"ids": ids})


urlpatterns = [
    path("test/rel/stats", stats),
    path("test/rel/publish", publish_view),
    path("test/rel/publish-sync", publish_sync_view),
    path("test/rel/newest", newest_view),
    # A small SUBSCRIBER_QUEUE, so that a frozen client falls behind after few events.
    path("test/rel/stream/<str:name>", SubscriptionView.as_view(group="x.{name}", queue_size=50)),
]
