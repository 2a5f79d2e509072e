"""A subscription's catch-up: the events a reconnecting client missed, read from the log in pages.

With a ``last_event_id`` a subscription replays from the log in pages of ``PAGE_SIZE`` events,
each read only once the response has taken the previous one, so the backpressure and
``SUBSCRIBER_MAX_BYTES`` of live events apply to replay too, and a replaying connection holds one
page at most. While it replays, live events are not buffered: the log has them too. When a page
reaches the hub's position (the last event it dispatched), the subscription goes live, dropping
live events up to the last one replayed (catchup.py merges each page). When the log cannot
continue after the client's id (trimmed, expired, unknown, replay off), the client gets a
``reset`` whose id is where it resumes from: for a filtered subscriber an opaque token
(tokens.py), since the group's position would tell it how many events it was not shown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .. import metrics
from ..buffer import BufferedSource, resolve
from .catchup import FIRST_PAGE_SIZE, merge_page
from .delivery import EventKey, PublishedEvent, format_id, parse_id
from .filtering import EventFilter, SafeFilter
from .replay import ReplayLog, get_log
from .tokens import seal, unseal

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger("django_sse")


def resume_position(last_event_id: str) -> EventKey | None:
    """The position a client's last id stands for: an event id or a token (``None``: neither)."""
    return parse_id(last_event_id) or unseal(last_event_id)


class ReplayingSource(BufferedSource):
    """The replay half of ``Subscription`` (subscription.py), which provides what is declared."""

    group: str
    filter: EventFilter | None
    _accepts: SafeFilter | None
    _hub: Hub | None
    _closed: bool

    def __init__(self, last_event_id: str | None) -> None:
        super().__init__()
        self.last_event_id = last_event_id
        # Replaying: live events are ignored (the log has them); ``_after`` is the last event
        # read from the log, ``_fetch`` the task reading the next page.
        self._replaying = last_event_id is not None
        self._after: EventKey | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._log: ReplayLog | None = None
        self._page_size = FIRST_PAGE_SIZE
        # Live events up to this one were replayed already.
        self._replayed_up_to: EventKey | None = None

    def _queue(self, delivery: PublishedEvent) -> None:
        raise NotImplementedError

    def _queue_reset(
        self, reason: str, last_event_id: str | None, position: EventKey | None
    ) -> None:
        raise NotImplementedError

    def end(self, error: Exception | None = None) -> None:
        raise NotImplementedError

    async def _catch_up(self, hub: Hub) -> None:
        """Joined: replay from the client's last id, or go live at once."""
        if self.last_event_id is None or self._closed:
            return
        self._after = resume_position(self.last_event_id)
        metrics.record().replayed()
        if self._after is None:
            self._go_live("unknown")
        elif self._after == hub.position(self.group):
            # Nothing was dispatched after it: the hub delivers all that follows, so the log has
            # nothing to add (saves a round trip on a reconnect that missed none).
            self._go_live()
        else:
            self._log = get_log()
            await self._next_page()

    def _resume_id(self, position: EventKey | None) -> str | None:
        if position is None or position[1] == 0:
            return None  # no event yet: the browser forgets its stale id
        # A filtered subscriber must not learn how many events it was not shown.
        return format_id(position) if self.filter is None else seal(position)

    def _go_live(self, reset: str | None = None) -> None:
        """Stop replaying: from the hub's position on, or after a ``reset`` at it."""
        self._replaying = False
        assert self._hub is not None
        if reset is None:
            self._replayed_up_to = self._after
            return
        position = self._hub.position(self.group)
        self._queue_reset(reset, self.last_event_id, position)
        self._replayed_up_to = position

    async def _next_page(self) -> None:
        assert self._log is not None and self._after is not None and self._hub is not None
        page = await self._log.read(self.group, self._after, self._page_size)
        if not self._replaying:
            return  # ended meanwhile
        merge = merge_page(page, self._after, self._page_size, self._hub.position(self.group))
        self._after, self._page_size = merge.read_up_to, merge.page_size
        for delivery in merge.events:
            if self._accepts is None or self._accepts(delivery):
                self._queue(delivery)
        if merge.live:
            self._go_live(merge.reset)

    async def _fetch_pages(self) -> None:
        try:
            # A page the filter emptied is followed by the next one at once.
            while self._replaying and not self._pending:
                await self._next_page()
        except Exception as exc:
            logger.exception("Could not read the replay log of %s", self.group)
            self.end(exc)
        finally:
            self._fetch = None
        if self._pending or self.finished:
            resolve(self._waiter)
