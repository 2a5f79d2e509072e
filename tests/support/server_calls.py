"""Calls to the test views of a running server: its hub's subscriber counts, numbered publishes.

The views live in tests/support/live_views.py (``/test/live/hub``) and tests/support/access_views.py
(``/test/acc/publish``); every test that drives a real server through them uses these.
"""

from __future__ import annotations

import httpx

from tests.support.servers import ServerProcess


def subscribers(server: ServerProcess, group: str) -> int:
    """How many subscribers ``group`` has in the server's hub."""
    groups = httpx.get(server.url + "/test/live/hub", timeout=10).json()["groups"]
    return int(groups.get(group, 0))


def publish_numbered(server: ServerProcess, group: str, start: int, count: int = 1) -> list[str]:
    """Publish ``count`` events numbered from ``start`` through the server; their ids."""
    response = httpx.get(
        server.url + "/test/acc/publish",
        params={"group": group, "count": count, "start": start},
        timeout=20,
    )
    ids: list[str] = response.json()["ids"]
    return ids
