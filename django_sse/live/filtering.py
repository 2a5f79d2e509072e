"""A view's event filter, run so that one event it fails on cannot end the stream."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .delivery import PublishedEvent

logger = logging.getLogger("django_sse")

EventFilter = Callable[["PublishedEvent"], bool]


class SafeFilter:
    """Calls ``event_filter``; an event it raises on is skipped, and said so once."""

    __slots__ = ("_failed", "event_filter")

    def __init__(self, event_filter: EventFilter) -> None:
        self.event_filter = event_filter
        self._failed = False

    def __call__(self, event: PublishedEvent) -> bool:
        try:
            return bool(self.event_filter(event))
        except Exception:
            # One bad event (a field missing) must not end the stream: skip it, for this
            # subscriber only, and say so once rather than for every event.
            if not self._failed:
                self._failed = True
                logger.exception(
                    "An event filter of %s failed on event %s: skipping that event (and any "
                    "other it fails on) for this subscriber",
                    *(event.group, event.id),
                )
            return False
