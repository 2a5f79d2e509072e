"""This process's live-layer state, in one named registry (as Channels' ``ChannelLayerManager``).

What the live layer keeps per process: the hub of each event loop, the in-memory channel layer
used when none is configured, the replay logs (one per configuration), the presence tracker and
the models registered for live updates. Settings changes (``override_settings`` in tests) reset
what derives from the settings: the logs and the tracker when ``DJANGO_SSE`` changes, the
fallback layer when ``CHANNEL_LAYERS`` does (Channels resets its own layers then). Hubs are
checked against the current layer every time one is asked for, so they need no reset; model
registrations come from code, not settings.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed

if TYPE_CHECKING:
    from channels.layers import InMemoryChannelLayer  # type: ignore[import-untyped]
    from django.db import models

    from .hub import Hub
    from .presence import Off
    from .replay import ReplayLog
    from .signals import Registration


class LiveState:
    """Per-process state of the live layer (see the module docstring)."""

    def __init__(self) -> None:
        self.hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
            weakref.WeakKeyDictionary()
        )
        self.fallback_layer: InMemoryChannelLayer | None = None
        self.logs: dict[tuple[Any, ...], ReplayLog] = {}
        self.logs_lock = threading.Lock()
        self.models: dict[type[models.Model], Registration] = {}
        self.presence: Off | None = None  # presence.tracker()

    def reset(self) -> None:
        """Forget everything the settings describe: the next use builds it from them anew."""
        with self.logs_lock:
            self.logs.clear()
        self.fallback_layer = None
        self.presence = None


live_state = LiveState()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "DJANGO_SSE":
        with live_state.logs_lock:
            live_state.logs.clear()
        live_state.presence = None
    elif setting == "CHANNEL_LAYERS":
        live_state.fallback_layer = None


setting_changed.connect(_setting_changed, dispatch_uid="django_sse.live_state")
