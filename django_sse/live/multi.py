"""Several groups on one connection: ``subscribe([...])`` and combined feeds (feeds.py).

A ``MultiSubscription`` holds one ``_Member`` per group: an ordinary ``Subscription`` of that
group (its hub membership, its replay from the log, its hand-over from replay to live, the hub's
per-group order and gap filling: all of it unchanged), except that it writes into the stream's
one buffer instead of its own. The buffer's order is the order the client receives events in,
so the stream rewrites each event's id as it is buffered: ``<feeds>:<cursor>``, where
``<feeds>`` lists the indexes of the feeds the event belongs to (for a plain
``subscribe([...])``: the index of its group) and the cursor (cursor.py) holds every group's
position as of that event. Whatever id the client last saw, it resumes each group exactly after
the last event of that group it received: no gap, no duplicate, each group in its own order.

Every group starts from a position: the client's (its ``Last-Event-ID``, or a feed's own
``lastEventId``), or else the log's newest, read before joining, so that a connection that drops
before its first event of a group still resumes that group without a gap. A group whose position
the log cannot continue from (trimmed, expired, another epoch) gets its own ``reset`` event; a
group named by an id that does not verify gets one with reason ``unknown``. The other groups
replay normally. One member that ends (it lagged, the channel layer failed) ends the stream:
the client reconnects and resumes every group from its last id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..encoding import EncodedEvent, encode_event
from ..events import ServerSentEvent
from .access import GuardedSubscription, StreamAccess
from .cursor import MAX_GROUPS, encode, entries_of, join, positions_of
from .db import release_database_connections
from .delivery import EventKey, PublishedEvent, format_id, parse_id
from .filtering import EventFilter, SafeFilter
from .groups import validate_group
from .hub import get_hub
from .replay import NullLog, get_log
from .subscription import RESET_EVENT, Subscription, resume_position

logger = logging.getLogger("django_sse")

# The id a member is started with when the client's id for its group did not verify: not an
# event id, so the member sends a reset ("unknown") at the hub's position.
_UNVERIFIED = ""


@dataclass(frozen=True)
class Feed:
    """What one feed of a stream follows: its groups, its filter, its own starting id."""

    groups: tuple[str, ...]
    filter: EventFilter | None = None
    last_event_id: str | None = None


def starting_positions(
    groups: Sequence[str], last_event_id: str | None, feeds: Sequence[Feed]
) -> tuple[dict[str, EventKey], set[str]]:
    """Where the client's ids position ``groups``, and the groups named by an id that failed.

    The connection's id (``Last-Event-ID``) comes first, then each feed's own, in feed order;
    the first that positions a group wins. Only ``groups`` can be positioned. A feed of a
    single group also accepts that group's single-group id (``<epoch>-<sequence>`` or a token).
    """
    found, intact = positions_of(last_event_id, groups)
    failed: set[str] = set()
    if last_event_id is not None and not intact:
        failed.update(groups)  # what it does not position may have been in the damaged part
    for feed in feeds:
        if feed.last_event_id is None:
            continue
        own, intact = positions_of(feed.last_event_id, groups)
        if not own and len(feed.groups) == 1:
            key = resume_position(feed.last_event_id)
            if key is not None:
                own, intact = {feed.groups[0]: key}, True
        if not intact:
            failed.update(feed.groups)
        for group, key in own.items():
            found.setdefault(group, key)
    return found, failed - found.keys()


async def starting_ids(
    groups: Sequence[str], last_event_id: str | None, feeds: Sequence[Feed]
) -> tuple[dict[str, EventKey], dict[str, str | None]]:
    """Each group's starting position, and the id its member starts from.

    A group no id positions starts at the log's newest event, read before joining (one
    pipelined read; the log starts an epoch for a group it holds nothing of). With replay off
    it starts live, unpositioned.
    """
    found, failed = starting_positions(groups, last_event_id, feeds)
    log = get_log()
    fresh = [g for g in groups if g not in found and g not in failed]
    if fresh and not isinstance(log, NullLog):
        newest = await log.positions(fresh)
        empty = [g for g, key in zip(fresh, newest, strict=True) if key is None]
        started = [parse_id(i) for i in await asyncio.gather(*map(log.newest, empty))]
        newest_of = dict(zip(empty, started, strict=True))
        for group, key in zip(fresh, newest, strict=True):
            position = key or newest_of.get(group)
            if position is not None:
                found[group] = position
    starts = {
        group: format_id(found[group])
        if group in found
        else (_UNVERIFIED if group in failed else None)
        for group in groups
    }
    return {g: found[g] for g in groups if g in found}, starts


class _Member(Subscription):
    """One group of a ``MultiSubscription``: buffers into the stream, which writes the ids."""

    releases_database = False  # the stream does, once for all its members

    def __init__(self, stream: MultiSubscription, group: str, last_event_id: str | None) -> None:
        super().__init__(
            group,
            last_event_id=last_event_id,
            queue_size=stream.limit,
        )
        self.stream = stream
        # One buffer for every group: its order is the order the ids are written in.
        self._pending = stream.buffer

    def _queue(self, delivery: PublishedEvent) -> None:
        self.stream.deliver(self.group, delivery)

    def _queue_reset(
        self, reason: str, last_event_id: str | None, position: EventKey | None
    ) -> None:
        self.stream.deliver_reset(self.group, reason, last_event_id is not None, position)

    def end(self, error: Exception | None = None) -> None:
        super().end(error)
        self.stream.lagged = self.stream.lagged or self.lagged
        self.stream.end(error)  # the client resumes every group from its last id

    async def replay(self) -> None:
        """Read pages while the stream has taken everything (see ``Subscription``)."""
        if self._replaying:
            await self._fetch_pages()


class _Routes:
    """Which feeds an event of a group belongs to: the ``<feeds>`` part of its id."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._feeds: dict[str, list[tuple[int, SafeFilter | None]]] = {}
        for index, feed in enumerate(feeds):
            accepts = SafeFilter(feed.filter) if feed.filter is not None else None
            for group in feed.groups:
                self._feeds.setdefault(group, []).append((index, accepts))
        self.all = {g: ",".join(str(i) for i, _ in f).encode() for g, f in self._feeds.items()}
        self.filtered = any(feed.filter is not None for feed in feeds)

    def of(self, group: str, delivery: PublishedEvent) -> bytes:
        """The feeds whose filters accept ``delivery`` (empty: none)."""
        if not self.filtered:
            return self.all[group]
        accepted = [str(i) for i, f in self._feeds[group] if f is None or f(delivery)]
        return ",".join(accepted).encode()


class StreamIds:
    """The ids of one stream's events: ``<feeds>:<cursor>``, the cursor as of each event.

    Every group's cursor entry is kept and replaced when an event of the group is written, so an
    id costs one entry and one join. Sealed when any feed filters (cursor.py).
    """

    def __init__(self, feeds: Sequence[Feed], groups: Sequence[str]) -> None:
        self.routes = _Routes(feeds)
        self.sealed = self.routes.filtered
        self._encoders = {group: entries_of(group, self.sealed) for group in groups}
        self._entries: dict[str, bytes] = {}  # in group order: a stable cursor

    def move(self, group: str, position: EventKey | None) -> None:
        if position is None:
            self._entries.pop(group, None)  # unpositioned: the next connection starts it anew
        else:
            self._entries[group] = self._encoders[group].encode(position)

    def cursor(self) -> bytes:
        return join(self._entries.values(), self.sealed)

    def event(self, group: str, delivery: PublishedEvent) -> bytes | None:
        """``delivery`` with this stream's id, or ``None`` when no feed shows it.

        A hidden event leaves its group's position: a reconnect filters it again.
        """
        feeds = self.routes.of(group, delivery)
        if not feeds:
            return None
        self._entries[group] = self._encoders[group].encode(delivery.position)
        wire = delivery.wire
        # Every logged event ends with "id: <its id>\n\n" (replay.with_id): this stream's id
        # takes its place. This runs per event and stream: one join, nothing decoded.
        end = len(wire) - len(delivery.id) - 6
        body = wire[:end] if wire.startswith(b"id: ", end) else wire[:-1]
        return b"".join((body, b"id: ", feeds, b":", self.cursor(), b"\n\n"))

    def reset(
        self, group: str, reason: str, last_event_id: str | None, position: EventKey | None
    ) -> EncodedEvent:
        """The ``reset`` of ``group``'s feeds, its cursor at ``position``."""
        self.move(group, position)
        event_id = f"{self.routes.all[group].decode()}:{self.cursor().decode()}"
        data = {"reason": reason, "last_event_id": last_event_id, "resume_from": event_id}
        event = ServerSentEvent(event=RESET_EVENT, id=event_id, data=data)
        return EncodedEvent(encode_event(event))


class MultiSubscription(Subscription):
    """Several groups on one connection (see the module docstring)."""

    def __init__(
        self,
        feeds: Sequence[Feed],
        *,
        last_event_id: str | None = None,
        queue_size: int | None = None,
    ) -> None:
        groups = list(dict.fromkeys(g for feed in feeds for g in feed.groups))
        if not groups:
            raise ValueError("A multi-group subscription needs at least one group.")
        if len(groups) > MAX_GROUPS:
            raise ValueError(f"At most {MAX_GROUPS} groups on one stream, not {len(groups)}.")
        for group in groups:
            validate_group(group)
        # The stream's own group is the first one, for logs only: it joins nothing itself.
        super().__init__(groups[0], queue_size=queue_size)
        self.groups = groups
        self.feeds = list(feeds)
        self.connection_id = last_event_id
        self._ids = StreamIds(self.feeds, groups)
        self._members: dict[str, _Member] = {}
        self._live = False  # every member replayed what it had to

    def cursor(self) -> str:
        """The cursor of every group's position as of the last event buffered."""
        return self._ids.cursor().decode()

    # --- what its members call ---

    @property
    def buffer(self) -> list[bytes]:
        """The stream's buffer, which its members share: one queue bound for all the groups."""
        return self._pending

    def deliver(self, group: str, delivery: PublishedEvent) -> None:
        """Buffer an event of ``group``, with this stream's id, and wake the response."""
        event = self._ids.event(group, delivery)
        if event is not None:
            self._pending.append(event)
            if self._waiter is not None:
                self._wake()

    def deliver_reset(
        self, group: str, reason: str, from_client: bool, position: EventKey | None
    ) -> None:
        last_event_id = self.connection_id if from_client else None
        self._pending.append(self._ids.reset(group, reason, last_event_id, position))
        self._wake()

    # --- the stream's life: members start, replay and end with it ---

    async def _setup(self) -> None:
        self._set_up = True
        try:
            self._hub = get_hub()
            found, starts = await starting_ids(self.groups, self.connection_id, self.feeds)
            if self._closed:
                return
            for group, position in found.items():
                self._ids.move(group, position)
            self._members = {g: _Member(self, g, starts[g]) for g in self.groups}
            await asyncio.gather(*(member.open() for member in self._members.values()))
            failed = next((m.error for m in self._members.values() if m.error), None)
            if failed is not None:
                raise failed
            await release_database_connections()
        except Exception as exc:
            self.error = exc
            await self.close()
            self.finished = True

    def waiter(self, limit: float | None) -> asyncio.Future[None] | None:
        if (
            self._set_up
            and self._fetch is None
            and not self._pending
            and not self.finished
            and not self._live
        ):
            # Everything was taken: the next pages (see Subscription.waiter).
            self._fetch = asyncio.get_running_loop().create_task(self._replay())
        return super().waiter(limit)

    async def _replay(self) -> None:
        try:
            for member in list(self._members.values()):
                if self._pending or self.finished:
                    break
                await member.replay()
            # A member never replays again once live: the waiter stops looking.
            self._live = not any(member._replaying for member in self._members.values())
        finally:
            self._fetch = None
        if self._pending or self.finished:
            self._wake()

    def end(self, error: Exception | None = None) -> None:
        if self._closed:
            return
        super().end(error)
        for member in self._members.values():
            member.end(error)

    async def close(self) -> None:
        await super().close()
        for member in self._members.values():
            await member.close()


class GuardedMultiSubscription(GuardedSubscription, MultiSubscription):
    """A ``MultiSubscription`` whose access (every feed's authorization) is re-checked."""

    def __init__(self, feeds: Sequence[Feed], *, access: StreamAccess, **kwargs: Any) -> None:
        MultiSubscription.__init__(self, feeds, **kwargs)
        self.access = access
        self._access_started = False


def subscribe_many(
    groups: Sequence[str],
    *,
    last_event_id: str | None = None,
    filter: EventFilter | None = None,
    queue_size: int | None = None,
) -> MultiSubscription:
    """``subscribe([...])``: each group its own feed, the index of its group in the ids."""
    if isinstance(groups, str):
        raise TypeError("subscribe_many() takes a sequence of group names, not a str.")
    names = list(groups)
    if len(set(names)) != len(names):
        raise ValueError(f"A group is named twice in {names!r}.")
    feeds = [Feed((group,), filter) for group in names]
    return MultiSubscription(feeds, last_event_id=last_event_id, queue_size=queue_size)


async def latest_multi_id(groups: Sequence[str]) -> str | None:
    """``latest_event_id([...])``: where a page rendered now resumes a multi-group stream."""
    names = [validate_group(group) for group in groups]
    log = get_log()
    newest = [parse_id(event_id) for event_id in await asyncio.gather(*map(log.newest, names))]
    found = {name: key for name, key in zip(names, newest, strict=True) if key is not None}
    if not found:
        return None  # replay is off
    return "0:" + encode(found, sealed=True)
