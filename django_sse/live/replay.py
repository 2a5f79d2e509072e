"""The replay log: every event of a group, numbered without gaps, readable in pages.

Every published event is appended here before it is sent through the channel layer, and the log
assigns its id: ``<epoch>-<sequence>``. The sequence counts a group's events 1, 2, 3 … with no
gap, atomically with the write, whatever the number of publishers and processes; the epoch
changes when the log forgets a group (its events expired), so an id of a forgotten epoch is
recognised as such and never confused with a new event of the same number.

- ``"memory"`` (default): per group, the last ``window`` events in this process. Epochs are
  microseconds since 1970, strictly increasing per process: a freed group that is written again
  gets a new one.
- ``"redis"``: per group a Redis Stream (the events) and a small hash (epoch and sequence). One
  Lua script increments the sequence and ``XADD``s with the explicit id ``<epoch>-<sequence>``
  (``MAXLEN ~ window``), so the event id *is* the stream id and ``XRANGE`` reads from it. The
  epoch is Redis ``TIME`` in microseconds when the hash is created. Both keys expire after
  ``REPLAY_TTL`` seconds without events.
- ``None``: nothing is kept; ids are still assigned (per process), and every reconnect gets a
  reset.

``read(group, after, count)`` returns at most ``count`` events after ``after``, and checks them:
because sequences have no gaps, the first event read must be ``after``'s sequence plus one, in
the same epoch. Anything else means that events after ``after`` are gone (trimmed, expired, a
foreign id), and the page says so (``Page.reset``) instead of skipping them. The check is part
of every page, so a trim that happens between two pages is caught as well.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from .. import conf
from .delivery import EventKey, PublishedEvent, format_id, parse_id, with_id
from .per_loop import PerLoop
from .redis_retry import retry_options
from .state import live_state

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

# Events per replay page: what one reconnecting client holds in memory at a time.
PAGE_SIZE = 100


@dataclass(frozen=True)
class Record:
    """An event ready to be logged: encoded without its id, plus what filters may read."""

    body: bytes  # the encoded event without its final blank line (see ``with_id``)
    event: str | None = None
    # Only when the body does not hold the data as its single last line (raw_data of several
    # lines): otherwise the payload is cut out of the body when a filter asks (delivery.py).
    payload: bytes | None = None
    is_json: bool | None = True  # None: the event has no data

    def delivery(self, group: str, event_id: str, origin: str | None = None) -> PublishedEvent:
        """This event as it is sent, now that the log has numbered it."""
        return PublishedEvent(
            group=group,
            id=event_id,
            wire=with_id(self.body, event_id),
            event=self.event,
            payload=self.payload,
            is_json=self.is_json,
            origin=origin,
        )


@dataclass
class Page:
    """The answer to "what came after this id?": events in order, or why there are none."""

    deliveries: list[PublishedEvent] = field(default_factory=list)
    # "expired" (events after the id are gone), "unknown" (not an id of this group's log) or
    # "disabled" (no replay log): the client must reload its state.
    reset: str | None = None


class ReplayLog(Protocol):
    # The token carried by the events this log numbered, when it is a log of this process only
    # (None for a log every process shares): the hub orders only events it can read back.
    origin: str | None

    async def append(self, group: str, record: Record) -> PublishedEvent: ...

    async def read(self, group: str, after: EventKey, count: int = PAGE_SIZE) -> Page: ...

    async def newest(self, group: str) -> str | None: ...

    async def position(self, group: str) -> EventKey | None: ...

    async def positions(self, groups: list[str]) -> list[EventKey | None]: ...


def check_page(after: EventKey, position: EventKey | None, first: EventKey | None) -> str | None:
    """Why a page read after ``after`` cannot continue from it (``None``: it can).

    ``position`` is the group's current (epoch, sequence), ``first`` the first event read.
    """
    if position is None:
        return "expired"  # the log holds nothing of this group (any more)
    epoch, sequence = position
    if after[0] != epoch:
        return "expired" if after[0] < epoch else "unknown"
    if after[1] > sequence:
        return "unknown"
    if first is None:
        # Nothing read: fine when nothing came after the id, a loss otherwise.
        return None if after[1] == sequence else "expired"
    return None if first == (epoch, after[1] + 1) else "expired"


class _GroupLog:
    __slots__ = ("entries", "epoch", "sequence", "touched")

    def __init__(self, epoch: int, now: float) -> None:
        self.epoch = epoch
        self.sequence = 0
        self.touched = now
        # (logged at, event), consecutive sequences; a list: an empty deque costs 600 bytes.
        self.entries: list[tuple[float, PublishedEvent]] = []


class MemoryLog:
    """Events of this process's groups; thread-safe because ``publish_sync`` runs in any thread.

    A group's state (epoch, sequence, events) is freed once its newest event is ``ttl`` seconds
    old: groups are kept in the order of their last write, so the expired ones are found at the
    front, at no cost per event. A freed group that is written again starts a new epoch.
    """

    def __init__(self, window: int, ttl: float) -> None:
        self.window = max(0, window)
        self.ttl = ttl
        self.origin: str | None = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._groups: OrderedDict[str, _GroupLog] = OrderedDict()
        self._last_epoch = 0

    def _new_epoch(self) -> int:
        self._last_epoch = max(time.time_ns() // 1000, self._last_epoch + 1)
        return self._last_epoch

    def _forget_expired(self, now: float) -> None:
        groups = self._groups
        while groups:
            oldest = next(iter(groups.values()))
            if oldest.touched >= now - self.ttl:
                return
            groups.popitem(last=False)

    def _prune(self, state: _GroupLog, now: float) -> None:
        entries = state.entries
        expired = 0
        while expired < len(entries) and entries[expired][0] < now - self.ttl:
            expired += 1
        if expired:
            del entries[:expired]

    def _group(self, group: str, now: float) -> _GroupLog:
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _GroupLog(self._new_epoch(), now)
        return state

    async def append(self, group: str, record: Record) -> PublishedEvent:
        now = time.monotonic()
        with self._lock:
            self._forget_expired(now)
            state = self._group(group, now)
            self._groups.move_to_end(group)
            state.touched = now
            state.sequence += 1
            event_id = f"{state.epoch}-{state.sequence}"
            delivery = record.delivery(group, event_id, self.origin)
            if self.window:
                entries = state.entries
                entries.append((now, delivery))
                if len(entries) > self.window:
                    del entries[0]
        return delivery

    async def read(self, group: str, after: EventKey, count: int = PAGE_SIZE) -> Page:
        now = time.monotonic()
        with self._lock:
            state = self._groups.get(group)
            if state is None:
                return Page(reset=check_page(after, None, None))
            self._prune(state, now)
            entries = state.entries
            # Sequences in the list are consecutive: the wanted event's index is arithmetic.
            start = after[1] + 1 - (entries[0][1].position[1] if entries else state.sequence + 1)
            page: list[PublishedEvent] = []
            first: EventKey | None = None
            if start < 0:
                first = entries[0][1].position if entries else None
            else:
                page = [delivery.copy() for _, delivery in entries[start : start + count]]
                first = page[0].position if page else None
            reset = check_page(after, (state.epoch, state.sequence), first)
        return Page(reset=reset) if reset else Page(deliveries=page)

    async def newest(self, group: str) -> str | None:
        # "<epoch>-0" for a group without events yet: its first event is then replayed too.
        now = time.monotonic()
        with self._lock:
            self._forget_expired(now)
            state = self._group(group, now)
            return f"{state.epoch}-{state.sequence}"

    async def position(self, group: str) -> EventKey | None:
        """The group's (epoch, newest sequence), ``None`` when the log holds nothing of it."""
        return (await self.positions([group]))[0]

    async def positions(self, groups: list[str]) -> list[EventKey | None]:
        with self._lock:
            found = [self._groups.get(group) for group in groups]
            return [None if state is None else (state.epoch, state.sequence) for state in found]


# How long the replay-less log keeps a group's sequence after its last event.
NULL_LOG_TTL = 3600.0


class NullLog(MemoryLog):
    """Replay turned off: ids are assigned as by the memory log, but no event is kept."""

    def __init__(self) -> None:
        super().__init__(window=0, ttl=NULL_LOG_TTL)

    async def read(self, group: str, after: EventKey, count: int = PAGE_SIZE) -> Page:
        return Page(reset="disabled")

    async def newest(self, group: str) -> str | None:
        return None  # nothing can be resumed from: an id would only earn a reset


# KEYS: the stream, the hash of the group's epoch ("e") and sequence ("s").
# ARGV: window, ttl, then the entry's fields and values.
_NEW_EPOCH = """
local function epoch()
  local found = redis.call('HGET', KEYS[2], 'e')
  if found then return found end
  local now = redis.call('TIME')
  found = now[1] .. string.format('%06d', tonumber(now[2]))
  -- Events of a forgotten epoch must not be read as events of the new one.
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', found)
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return found
end
"""
APPEND_SCRIPT = (
    _NEW_EPOCH
    + """
local id = epoch() .. '-' .. redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return id
"""
)
NEWEST_SCRIPT = (
    _NEW_EPOCH
    + """
return epoch() .. '-' .. (redis.call('HGET', KEYS[2], 's') or '0')
"""
)


# Redis connections per event loop, and how long a command may wait for one (seconds).
REDIS_CONNECTIONS = 50
REDIS_POOL_WAIT = 20


class _Connection:
    """A loop's Redis client and the scripts registered on it."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        # A bounded pool that makes callers wait for a free connection: redis-py's default pool
        # raises "Too many connections" past 100 (a hundred clients resuming at once).
        pool = BlockingConnectionPool.from_url(
            url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_WAIT, **retry_options()
        )
        self.client: Redis = Redis.from_pool(pool)  # closes the pool with the client
        self.append: AsyncScript = self.client.register_script(APPEND_SCRIPT)
        self.newest: AsyncScript = self.client.register_script(NEWEST_SCRIPT)


class RedisLog:
    """One Redis Stream per group, shared by every process using the same Redis server."""

    origin: str | None = None  # shared: every process can read back what any process logged

    def __init__(self, url: str, window: int, ttl: float, prefix: str) -> None:
        self.url = url
        self.window = max(1, window)
        self.ttl = max(1, int(ttl))
        self.prefix = prefix
        # redis.asyncio clients belong to the event loop that created them (per_loop.py).
        self._connections: PerLoop[_Connection] = PerLoop(
            lambda: _Connection(self.url), lambda connection: connection.client.aclose()
        )

    async def _connection(self) -> _Connection:
        return await self._connections.get()

    async def _client(self) -> Redis:
        return (await self._connection()).client

    def key(self, group: str) -> str:
        return f"{self.prefix}:replay:{group}"

    def position_key(self, group: str) -> str:
        return f"{self.prefix}:replay-id:{group}"

    async def append(self, group: str, record: Record) -> PublishedEvent:
        # The payload is stored only where the body does not hold it (see Record.payload).
        fields: list[Any] = ["b", record.body]
        if record.is_json is not None:
            fields += ["j", b"1" if record.is_json else b"0"]
        if record.event is not None:
            fields += ["e", record.event]
        if record.payload is not None:
            fields += ["p", record.payload]
        connection = await self._connection()
        raw_id = await connection.append(
            keys=[self.key(group), self.position_key(group)],
            args=[self.window, self.ttl, *fields],
        )
        return record.delivery(group, _decode(raw_id))

    async def read(self, group: str, after: EventKey, count: int = PAGE_SIZE) -> Page:
        # One transaction: the position and the page are of the same moment, so the check
        # below cannot be fooled by an append or a trim in between.
        async with (await self._client()).pipeline(transaction=True) as pipe:
            pipe.xrange(self.key(group), "(" + format_id(after), "+", count=count)
            pipe.hmget(self.position_key(group), ["e", "s"])
            entries, position = await pipe.execute()
        current = _position(position)
        first = parse_id(_decode(entries[0][0])) if entries else None
        reset = check_page(after, current, first)
        if reset is not None:
            return Page(reset=reset)
        return Page(deliveries=[_delivery(group, _decode(i), f) for i, f in entries])

    async def newest(self, group: str) -> str | None:
        # Starts the group's epoch when it has none, so that a page rendered before the first
        # event resumes from "<epoch>-0" and gets that event replayed.
        raw_id = await (await self._connection()).newest(
            keys=[self.key(group), self.position_key(group)], args=[self.window, self.ttl]
        )
        return _decode(raw_id)

    async def position(self, group: str) -> EventKey | None:
        """The group's (epoch, newest sequence), ``None`` when Redis holds nothing of it."""
        found: Any = await (await self._client()).hmget(self.position_key(group), ["e", "s"])
        return _position(found)

    async def positions(self, groups: list[str]) -> list[EventKey | None]:
        found: list[EventKey | None] = []
        for start in range(0, len(groups), 1000):  # bounded pipelines for many groups
            async with (await self._client()).pipeline(transaction=False) as pipe:
                for group in groups[start : start + 1000]:
                    pipe.hmget(self.position_key(group), ["e", "s"])
                found += [_position(values) for values in await pipe.execute()]
        return found


def _position(values: Any) -> EventKey | None:
    epoch, sequence = values
    if epoch is None:
        return None
    return int(epoch), int(sequence or 0)


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _delivery(group: str, event_id: str, fields: dict[Any, Any]) -> PublishedEvent:
    def get(name: str) -> Any:
        return fields.get(name, fields.get(name.encode()))

    event = get("e")
    kind = get("j")
    return PublishedEvent(
        group=group,
        id=event_id,
        wire=with_id(get("b"), event_id),
        event=_decode(event) if event is not None else None,
        payload=get("p"),
        is_json=None if kind is None else kind in (b"1", "1"),
    )


def get_log() -> ReplayLog:
    """The replay log the settings describe (one per distinct configuration, per process)."""
    backend = conf.get("REPLAY_BACKEND")
    window = int(conf.get("REPLAY_WINDOW"))
    ttl = float(conf.get("REPLAY_TTL"))
    config = (backend, window, ttl, conf.get("REDIS_URL"), conf.get("KEY_PREFIX"))
    logs = live_state.logs
    log = logs.get(config)
    if log is not None:
        return log
    with live_state.logs_lock:
        log = logs.get(config)
        if log is None:
            log = logs[config] = _make_log(*config)
        return log


def _make_log(backend: Any, window: int, ttl: float, url: Any, prefix: Any) -> ReplayLog:
    if backend is None:
        return NullLog()
    if backend == "memory":
        return MemoryLog(max(1, window), ttl)
    if backend == "redis":
        if not url:
            raise ImproperlyConfigured('DJANGO_SSE["REPLAY_BACKEND"] = "redis" needs "REDIS_URL".')
        return RedisLog(url, window, ttl, prefix or "django_sse")
    raise ImproperlyConfigured(
        f'DJANGO_SSE["REPLAY_BACKEND"] must be "memory", "redis" or None, not {backend!r}.'
    )
