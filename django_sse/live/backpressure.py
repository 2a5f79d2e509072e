"""When a subscriber is closed for its client's sake: too far behind, or too much written.

A subscriber never slows the others down: past ``SUBSCRIBER_QUEUE`` events buffered it is
closed (``lagged``), and its client reconnects and replays what it missed. Past
``SUBSCRIBER_MAX_BYTES`` written on one connection (allowance.py) it ends at an event boundary
(``exhausted``), and its client resumes from its last id on a new connection. Either way the
stream ends without an error: what the client missed is in the replay log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import conf, metrics
from .allowance import ByteAllowance

if TYPE_CHECKING:
    from .delivery import EventKey, PublishedEvent
    from .hub import Hub

logger = logging.getLogger("django_sse")


class Backpressure:
    """The queue bound and the byte allowance of a ``Subscription``, which provides the rest."""

    if TYPE_CHECKING:
        group: str
        _hub: Hub | None

        # A hub member (membership.Subscriber), which it leaves when it has written enough.
        def push(self, delivery: PublishedEvent) -> bool: ...
        def reset(self, reason: str, position: EventKey) -> bool: ...
        def end(self, error: Exception | None = None) -> None: ...

    def __init__(self, queue_size: int | None) -> None:
        self.limit = max(1, int(conf.get("SUBSCRIBER_QUEUE") if queue_size is None else queue_size))
        # How many events may be buffered before the next take(): the limit, and again the
        # limit after each take (a take empties the buffer).
        self._capacity = self.limit
        self._bytes = ByteAllowance()
        self.lagged = False  # fell SUBSCRIBER_QUEUE events behind
        self.exhausted = False  # wrote SUBSCRIBER_MAX_BYTES: the client goes on on a new connection

    def _exhaust(self) -> None:
        # End after these bytes, at an event boundary (allowance.py): the client resumes from
        # its last id on a new connection.
        self.exhausted = True
        metrics.record().dropped("byte_limit")
        if self._hub is not None:
            self._hub.leave(self.group, self)
        self.end()

    def _overflow(self) -> bool:
        # Never slow the others down: this client reconnects and replays what it missed.
        self.lagged = True
        metrics.record().dropped("lagging")
        logger.info("Closing a subscriber of %s that fell %d events behind", self.group, self.limit)
        self.end()
        return False
