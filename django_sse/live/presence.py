"""``presence(group)``: who is subscribed to a group, in every process sharing the layer.

Turned on by ``DJANGO_SSE["PRESENCE"] = True``. Each process counts its own subscribers per
group as the hub adds and removes them, with the user id of those whose view knows one
(``SubscriptionView`` streams of authenticated users). With the Redis replay backend
(``REPLAY_BACKEND = "redis"``) every process writes its figures to Redis, one hash per group
with a field per process holding its count, its user ids and the time it stops being valid:
``PRESENCE_TTL`` seconds after the write. A process rewrites its entries when they change and
every third of that TTL, so a process that crashed (SIGKILL, a lost machine) drops out of every
group within ``PRESENCE_TTL`` seconds. With the in-memory backend, presence covers this process
only, as the in-memory layer does.

``DJANGO_SSE["PRESENCE_EVENTS"] = True`` also publishes ``joined`` and ``left`` events
(``{"user": <id>}``) to the group when an authenticated user's first subscription of the group
in a process starts and its last one ends. A crashed process sends no ``left``; a user whose
tabs reach two processes joins in each.

The signal ``presence_changed`` (``group=``) is sent, when it has receivers, once
``presence(group)`` reflects a change of this process's subscribers of the group: at once with
the in-memory backend, after the Redis write with the Redis one. Changes made in one turn of the
event loop (a burst of connects) are sent once per group. A receiver may publish the new count
to the group, as the demo's "N viewing" badge does: every stream then gets an event per change,
so keep that for groups of a modest audience.

Clocks: a field's expiry is the writer's wall clock, read by the reader's: keep the machines'
clocks in sync (NTP), as the TTL is a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from .. import conf
from .groups import validate_group
from .per_loop import PerLoop
from .state import live_state

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("django_sse")

JOINED_EVENT = "joined"
LEFT_EVENT = "left"

# Sent with ``group=`` once ``presence(group)`` shows a change (see the module docstring).
presence_changed = Signal()


@dataclass(frozen=True)
class Presence:
    """A group's subscribers: how many streams, and the distinct ids of authenticated users."""

    count: int
    user_ids: list[Any] = field(default_factory=list)


def identify(subscription: Any, user: Any) -> None:
    """Say which user ``subscription`` belongs to (``SubscriptionView`` does, for its streams)."""
    if getattr(user, "is_authenticated", False):
        subscription.presence_user = user.pk


class _Local:
    """This process's subscribers per group, and their users."""

    def __init__(self) -> None:
        self.members: dict[str, dict[object, Any]] = {}
        self.users: dict[str, Counter[Any]] = {}

    def add(self, group: str, subscriber: object) -> Any:
        """Add; returns the user id when it is that user's first subscription here, else None."""
        members = self.members.setdefault(group, {})
        if subscriber in members:
            return None
        user = getattr(subscriber, "presence_user", None)
        members[subscriber] = user
        if user is None:
            return None
        users = self.users.setdefault(group, Counter())
        users[user] += 1
        return user if users[user] == 1 else None

    def remove(self, group: str, subscriber: object) -> Any:
        """Remove; returns the user id when it was that user's last subscription here."""
        members = self.members.get(group)
        if members is None or subscriber not in members:
            return None
        user = members.pop(subscriber)
        if not members:
            del self.members[group]
        if user is None:
            return None
        users = self.users[group]
        users[user] -= 1
        if users[user]:
            return None
        del users[user]
        if not users:
            del self.users[group]
        return user

    def figures(self, group: str) -> tuple[int, list[Any]]:
        return len(self.members.get(group, ())), sorted(self.users.get(group, ()), key=str)


class Off:
    """Presence turned off: the hub's calls do nothing."""

    def entered(self, group: str, subscriber: object) -> None: ...
    def left(self, group: str, subscriber: object) -> None: ...

    async def presence(self, group: str) -> Presence:
        raise ImproperlyConfigured('presence() needs DJANGO_SSE["PRESENCE"] = True.')


class Tracker(Off):
    """Presence on: this process's figures, shared through Redis when Redis is configured."""

    def __init__(self, redis_url: str | None, prefix: str, ttl: float, events: bool) -> None:
        self.local = _Local()
        self.events = events
        self.shared = (
            SharedPresence(self.local, redis_url, prefix, ttl, self._tell_changed)
            if redis_url
            else None
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._unannounced: set[str] = set()
        self._announcer: asyncio.Task[None] | None = None

    # --- called by the hub, on its loop ---

    def entered(self, group: str, subscriber: object) -> None:
        user = self.local.add(group, subscriber)
        self._changed(group, JOINED_EVENT, user)

    def left(self, group: str, subscriber: object) -> None:
        user = self.local.remove(group, subscriber)
        self._changed(group, LEFT_EVENT, user)

    async def presence(self, group: str) -> Presence:
        validate_group(group)
        if self.shared is None:
            count, users = self.local.figures(group)
            return Presence(count, users)
        return await self.shared.read(group)

    def _changed(self, group: str, event: str, user: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a subscriber released with its loop gone: nobody to tell
            return
        if self.events and user is not None:
            self._spawn(self._announce(group, event, user))
        if self.shared is None:
            self._tell_changed({group})
        else:
            self.shared.changed(group)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _announce(self, group: str, event: str, user: Any) -> None:
        from ..events import ServerSentEvent
        from .publish import publish

        try:
            await publish(group, ServerSentEvent(event=event, data={"user": user}))
        except Exception:
            logger.exception("Could not publish the presence event %s of %s", event, group)

    def _tell_changed(self, groups: set[str]) -> None:
        if not presence_changed.has_listeners() or not groups:
            return
        self._unannounced |= groups
        task, loop = self._announcer, asyncio.get_running_loop()
        # One task for whatever else changes before it runs (a new one on another loop: one
        # whose loop is gone never runs).
        if task is None or task.done() or task.get_loop() is not loop:
            self._announcer = loop.create_task(self._send_changed())

    async def _send_changed(self) -> None:
        # Until nothing is left: a change made while the receivers run (a sync one runs in a
        # thread, so the hub's loop goes on) finds this task still running and starts no other.
        while self._unannounced:
            groups, self._unannounced = self._unannounced, set()
            for group in sorted(groups):
                # Robust: a failing receiver is logged by Django and stops neither the others
                # nor us.
                await presence_changed.asend_robust(sender=Tracker, group=group)


class SharedPresence:
    """Every process's figures in Redis: one hash per group, a field per process (see above)."""

    def __init__(
        self,
        local: _Local,
        redis_url: str,
        prefix: str,
        ttl: float,
        written: Callable[[set[str]], None],
    ) -> None:
        self.local = local
        # Told which groups' changes a write made visible (presence_changed).
        self._written = written
        self.redis_url = redis_url
        self.prefix = prefix
        self.ttl = max(1.0, ttl)
        # One field per process in each group's hash: readable in redis-cli.
        self.process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._dirty: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        # redis.asyncio clients belong to the event loop that created them (per_loop.py).
        self._clients: PerLoop[Redis] = PerLoop(self._new_client, lambda client: client.aclose())

    def changed(self, group: str) -> None:
        """``group``'s figures changed here: write them soon (on the running loop)."""
        self._dirty.add(group)
        if self._writer is None or self._writer.done():
            self._wake = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        assert self._wake is not None
        self._wake.set()

    def _key(self, group: str) -> str:
        return f"{self.prefix}:presence:{group}"

    def _new_client(self) -> Redis:
        from redis.asyncio import Redis

        return Redis.from_url(self.redis_url)

    async def _write_loop(self) -> None:
        """Write what changed at once, and everything every third of the TTL."""
        assert self._wake is not None
        refresh = self.ttl / 3
        next_refresh = 0.0
        while self.local.members or self._dirty:
            now = time.monotonic()
            changed = set(self._dirty)
            groups = set(changed)
            if now >= next_refresh:
                groups |= set(self.local.members)
                next_refresh = now + refresh
            self._dirty.clear()
            self._wake.clear()
            try:
                await self._write(groups)
            except Exception:
                logger.exception("Could not write presence to Redis (retried)")
                self._dirty |= groups
            else:
                self._written(changed)
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_refresh - time.monotonic()))
            except TimeoutError:
                pass

    async def _write(self, groups: set[str]) -> None:
        if not groups:
            return
        expires = time.time() + self.ttl
        async with (await self._clients.get()).pipeline(transaction=False) as pipe:
            for group in groups:
                count, users = self.local.figures(group)
                key = self._key(group)
                if count:
                    entry = json.dumps({"n": count, "u": users, "x": expires}, default=str)
                    pipe.hset(key, self.process, entry)
                    pipe.expire(key, int(self.ttl) + 1)
                else:
                    pipe.hdel(key, self.process)
            await pipe.execute()

    async def read(self, group: str) -> Presence:
        """The figures of ``group`` in every process whose entry has not expired."""
        client = await self._clients.get()
        key = self._key(group)
        entries = await client.hgetall(key)
        now = time.time()
        count, stale = 0, []
        seen: set[Any] = set()
        for process, raw in entries.items():
            entry = json.loads(raw)
            if entry["x"] < now:
                stale.append(process)  # a process that stopped refreshing: crashed
                continue
            count += entry["n"]
            seen.update(entry["u"])
        if stale:
            await client.hdel(key, *stale)
        return Presence(count, sorted(seen, key=str))


def tracker() -> Off:
    """What tracks this process's subscribers (nothing, when presence is off).

    Made from the settings on first use, kept in the live layer's registry (state.py), which
    forgets it when ``DJANGO_SSE`` changes.
    """
    current = live_state.presence
    if current is None:
        current = live_state.presence = _make_tracker()
    return current


def _make_tracker() -> Off:
    if not conf.get("PRESENCE"):
        return Off()
    shared = conf.get("REPLAY_BACKEND") == "redis"
    if shared and not conf.get("REDIS_URL"):
        raise ImproperlyConfigured('DJANGO_SSE["PRESENCE"] with Redis needs "REDIS_URL".')
    return Tracker(
        conf.get("REDIS_URL") if shared else None,
        conf.get("KEY_PREFIX"),
        float(conf.get("PRESENCE_TTL")),
        bool(conf.get("PRESENCE_EVENTS")),
    )


async def presence(group: str) -> Presence:
    """Who is subscribed to ``group``: ``(await presence("items")).count``."""
    return await tracker().presence(group)


def presence_sync(group: str) -> Presence:
    """``presence`` for sync code (views, management commands)."""
    return async_to_sync(presence)(group)
