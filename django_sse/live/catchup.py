"""The replay merge: what one page of the replay log adds to a reconnecting subscription.

A subscription that resumes from a client's last id reads the log in pages while the hub
already dispatches live events (see subscription.py). Each page moves the subscription's place
in the log on, sets the size of the next page, and says whether the subscription has caught up
with the hub (it goes live) or must tell its client that events are lost (a ``reset``).
"""

from __future__ import annotations

from typing import NamedTuple

from .delivery import EventKey, PublishedEvent
from .replay import PAGE_SIZE, Page

# A replay's first page is small: the size of the group's events is not known yet. Later pages
# hold about PAGE_BYTES (at most PAGE_SIZE events).
FIRST_PAGE_SIZE = 16
PAGE_BYTES = 256 * 1024


class Merge(NamedTuple):
    """What a page adds: the events to queue (before any filter), and where replay stands."""

    events: list[PublishedEvent]
    read_up_to: EventKey  # the last event read from the log
    page_size: int  # the size of the next page
    live: bool  # replay is over: go live after ``read_up_to``, or after ``reset``
    reset: str | None  # the reason to tell the client that events are lost


def merge_page(
    page: Page, read_up_to: EventKey, page_size: int, hub_position: EventKey | None
) -> Merge:
    """Merge ``page``, read after ``read_up_to``, with the hub at ``hub_position``."""
    if page.reset is not None:
        return Merge([], read_up_to, page_size, True, page.reset)
    events = list(page.deliveries)
    if events:
        read_up_to = events[-1].position
        # Pages of about PAGE_BYTES: a hundred small events, a few big ones.
        average = max(1, sum(len(event.wire) for event in events) // len(events))
        page_size = max(1, min(PAGE_SIZE, PAGE_BYTES // average))
    if hub_position is None or read_up_to >= hub_position:
        return Merge(events, read_up_to, page_size, True, None)
    if not events:
        # The hub dispatched events the log does not hold (it lost them): say so.
        return Merge(events, read_up_to, page_size, True, "gap")
    return Merge(events, read_up_to, page_size, False, None)
