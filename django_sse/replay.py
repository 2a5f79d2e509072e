"""The replay log: what a reconnecting client missed, found by its ``Last-Event-ID``.

Every published event is appended here before it is sent through the channel layer, and the log
assigns its id. Ids have the form ``<a>-<b>`` (two integers) and grow monotonically per group:

- ``"memory"`` (default): a ring buffer per group in this process. Ids are
  ``<process start in ms>-<sequence>``, so an id from before a restart is recognised as foreign.
- ``"redis"``: a Redis Stream per group (``XADD ... MAXLEN ~ window``, read with ``XRANGE`` from an
  exclusive start). The stream's own ids (``1732425600000-0``) are the event ids, so a client can
  reconnect to any process sharing the Redis server.
- ``None``: nothing is kept; ids are still assigned, and every reconnect gets a reset.

A reconnect whose id is no longer covered by the window (too old, expired, unknown, from another
process's memory log) gets ``Replay.reset`` instead of events: the subscriber sends a ``reset``
event and the page reloads its state.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from . import conf
from .delivery import Delivery, parse_id, with_id
from .redis_retry import retry_options

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True)
class Record:
    """An event ready to be logged: encoded without its id, plus what filters may read."""

    body: bytes  # the encoded event without its final blank line (see ``with_id``)
    event: str | None = None
    payload: bytes | None = None
    is_json: bool = True


@dataclass
class Replay:
    """The answer to "what came after this id?"."""

    deliveries: list[Delivery] = field(default_factory=list)
    # Set when the window does not cover the id: why, and the newest id to resume from.
    reset: str | None = None
    newest_id: str | None = None


class ReplayLog(Protocol):
    async def append(self, group: str, record: Record) -> Delivery: ...

    async def since(self, group: str, last_event_id: str) -> Replay: ...

    async def newest(self, group: str) -> str | None: ...


# Expired rings of groups that are not written again are dropped every this many appends.
SWEEP_EVERY = 1000


class MemoryLog:
    """Ring buffers in this process; thread-safe because ``publish_sync`` runs in any thread."""

    def __init__(self, window: int, ttl: float) -> None:
        self.window = max(1, window)
        self.ttl = ttl
        self.epoch = int(time.time() * 1000)
        self._lock = threading.Lock()
        self._rings: dict[str, deque[tuple[float, Delivery]]] = {}
        self._sequences: dict[str, int] = {}
        self._appends = 0

    def _prune(self, ring: deque[tuple[float, Delivery]], now: float) -> None:
        while ring and ring[0][0] < now - self.ttl:
            ring.popleft()

    async def append(self, group: str, record: Record) -> Delivery:
        now = time.monotonic()
        with self._lock:
            sequence = self._sequences.get(group, 0) + 1
            self._sequences[group] = sequence
            event_id = f"{self.epoch}-{sequence}"
            delivery = Delivery(
                group=group,
                id=event_id,
                wire=with_id(record.body, event_id),
                event=record.event,
                payload=record.payload,
                is_json=record.is_json,
            )
            ring = self._rings.get(group)
            if ring is None:
                ring = self._rings[group] = deque(maxlen=self.window)
            ring.append((now, delivery))
            self._prune(ring, now)
            self._appends += 1
            if self._appends % SWEEP_EVERY == 0:
                self._sweep(now)
        return delivery

    def _sweep(self, now: float) -> None:
        # Per-object groups ("items.item.<pk>") are written once and never again: without a
        # sweep their rings would stay forever. Sequences stay, so ids never repeat.
        for group, ring in list(self._rings.items()):
            self._prune(ring, now)
            if not ring:
                del self._rings[group]

    async def since(self, group: str, last_event_id: str) -> Replay:
        now = time.monotonic()
        with self._lock:
            sequence = self._sequences.get(group, 0)
            newest = f"{self.epoch}-{sequence}" if sequence else None
            key = parse_id(last_event_id)
            if key is None or key[0] != self.epoch or key[1] > sequence:
                return Replay(reset="unknown", newest_id=newest)
            ring = self._rings.get(group)
            if ring is not None:
                self._prune(ring, now)
            if key[1] == sequence:
                return Replay()
            # Sequences are consecutive, so the window covers the id exactly when the event
            # right after it is still in the ring.
            if not ring or ring[0][1].key[1] > key[1] + 1:
                return Replay(reset="expired", newest_id=newest)
            first = ring[0][1].key[1]
            return Replay(deliveries=[d for _, d in list(ring)[key[1] + 1 - first :]])

    async def newest(self, group: str) -> str | None:
        # "<epoch>-0" for a group without events yet: its first event is then replayed too.
        with self._lock:
            return f"{self.epoch}-{self._sequences.get(group, 0)}"


class NullLog(MemoryLog):
    """Replay turned off: ids are assigned as by the memory log, but nothing is kept."""

    def __init__(self) -> None:
        super().__init__(window=1, ttl=0)

    async def since(self, group: str, last_event_id: str) -> Replay:
        # No id to resume from: the reset goes out with an empty id, so the client forgets its
        # own instead of sending it back (and being reset, and reloading) forever.
        return Replay(reset="disabled", newest_id=None)

    async def newest(self, group: str) -> str | None:
        return None  # nothing can be resumed from: an id would only earn a reset


class RedisLog:
    """One Redis Stream per group, shared by every process using the same Redis server."""

    def __init__(self, url: str, window: int, ttl: float, prefix: str) -> None:
        self.url = url
        self.window = max(1, window)
        self.ttl = ttl
        self.prefix = prefix
        # redis.asyncio clients belong to the event loop that created them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from redis.asyncio import Redis

            client = self._clients[loop] = Redis.from_url(self.url, **retry_options())
            self._close_with(loop)
        return client

    def _close_with(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this loop's client when the loop closes, as channels_redis does for its own.

        Code that runs a loop per call (``async_to_sync`` outside a running loop, as
        ``latest_event_id_sync`` in a shell, or ``asyncio.run``) would otherwise leak a client
        and its connection per call: the client keeps its loop alive. ``publish_sync`` needs no
        new loop (loop_thread.py); its loop's client is closed the same way, at exit.
        """
        close = loop.close

        def close_client_then_loop() -> None:
            client = self._clients.pop(loop, None)
            if client is not None and not loop.is_running():
                loop.run_until_complete(client.aclose())
            close()

        loop.close = close_client_then_loop  # type: ignore[method-assign]

    def key(self, group: str) -> str:
        return f"{self.prefix}:replay:{group}"

    async def append(self, group: str, record: Record) -> Delivery:
        fields: dict[Any, Any] = {"b": record.body, "j": b"1" if record.is_json else b"0"}
        if record.event is not None:
            fields["e"] = record.event
        if record.payload is not None:
            fields["p"] = record.payload
        key = self.key(group)
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.xadd(key, fields, maxlen=self.window, approximate=True)
            pipe.expire(key, max(1, int(self.ttl)))
            raw_id, _ = await pipe.execute()
        event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        return _delivery(group, event_id, fields)

    async def since(self, group: str, last_event_id: str) -> Replay:
        client = self._client()
        key = self.key(group)
        async with client.pipeline(transaction=False) as pipe:
            pipe.xrange(key, "-", "+", count=1)
            pipe.xrevrange(key, "+", "-", count=1)
            first, last = await pipe.execute()
        newest = _decode(last[0][0]) if last else None
        wanted = parse_id(last_event_id)
        if wanted is None:
            return Replay(reset="unknown", newest_id=newest)
        if not first:
            # No stream (expired after REPLAY_TTL of silence, or never written): the events
            # after this id, if there were any, are gone.
            return Replay(reset="expired", newest_id=None)
        newest_key = parse_id(newest)
        if newest_key is not None and wanted > newest_key:
            return Replay(reset="unknown", newest_id=newest)
        oldest_allowed = int((time.time() - self.ttl) * 1000)
        first_key = parse_id(_decode(first[0][0])) or (0, 0)
        # MAXLEN ~ trims whole blocks and streams do not number entries consecutively: the
        # window certainly covers the id only while that event itself is still in the stream.
        if wanted < first_key or wanted[0] < oldest_allowed:
            return Replay(reset="expired", newest_id=newest)
        entries: Any = await client.xrange(key, "(" + last_event_id, "+")
        return Replay(deliveries=[_delivery(group, _decode(i), f) for i, f in entries or ()])

    async def newest(self, group: str) -> str | None:
        last: Any = await self._client().xrevrange(self.key(group), "+", "-", count=1)
        return _decode(last[0][0]) if last else None


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _delivery(group: str, event_id: str, fields: dict[Any, Any]) -> Delivery:
    def get(name: str) -> Any:
        return fields.get(name, fields.get(name.encode()))

    event = get("e")
    return Delivery(
        group=group,
        id=event_id,
        wire=with_id(get("b"), event_id),
        event=_decode(event) if event is not None else None,
        payload=get("p"),
        is_json=get("j") in (b"1", "1"),
    )


_logs: dict[tuple[Any, ...], ReplayLog] = {}
_logs_lock = threading.Lock()


def get_log() -> ReplayLog:
    """The replay log the settings describe (one per distinct configuration, per process)."""
    backend = conf.get("REPLAY_BACKEND")
    window = int(conf.get("REPLAY_WINDOW"))
    ttl = float(conf.get("REPLAY_TTL"))
    config = (backend, window, ttl, conf.get("REDIS_URL"), conf.get("KEY_PREFIX"))
    log = _logs.get(config)
    if log is not None:
        return log
    with _logs_lock:
        log = _logs.get(config)
        if log is None:
            log = _logs[config] = _make_log(*config)
        return log


def _make_log(backend: Any, window: int, ttl: float, url: Any, prefix: Any) -> ReplayLog:
    if backend is None:
        return NullLog()
    if backend == "memory":
        return MemoryLog(window, ttl)
    if backend == "redis":
        if not url:
            raise ImproperlyConfigured('DJANGO_SSE["REPLAY_BACKEND"] = "redis" needs "REDIS_URL".')
        return RedisLog(url, window, ttl, prefix or "django_sse")
    raise ImproperlyConfigured(
        f'DJANGO_SSE["REPLAY_BACKEND"] must be "memory", "redis" or None, not {backend!r}.'
    )


def reset_logs() -> None:
    """Forget every log (tests switch settings between cases)."""
    with _logs_lock:
        _logs.clear()
