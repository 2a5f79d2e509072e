"""Server-side state for the reliability tests: ``/test/rel/stats``.

(Rebuilt from tests/test_churn.py's use of it after this file was overwritten by mistake by
the access-tests work, whose views now live in tests/access_views.py.)
"""

from __future__ import annotations

import asyncio
import gc
import resource
from pathlib import Path

from channels.layers import InMemoryChannelLayer  # type: ignore[import-untyped]
from django.http import HttpRequest, JsonResponse
from django.urls import path

from django_sse.hub import current_layer, get_hub


def _rss_kib() -> int:
    # The current resident set (not the peak that getrusage reports) from /proc when there is one.
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _layer_state() -> dict[str, int]:
    layer = current_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return {
            "memberships": sum(len(channels) for channels in layer.groups.values()),
            "channels": len(layer.channels),
        }
    return {"memberships": -1, "channels": -1}


async def stats(request: HttpRequest) -> JsonResponse:
    if request.GET.get("gc"):
        gc.collect()
    return JsonResponse(
        {
            "hub": get_hub().stats(),
            "layer": _layer_state(),
            # This request's own task is running too, in every snapshot alike.
            "tasks": len(asyncio.all_tasks()),
            "rss_kib": _rss_kib(),
        }
    )


urlpatterns = [path("test/rel/stats", stats)]
