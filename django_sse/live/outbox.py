"""The transactional outbox: a model event is a row written in the transaction that saved the row.

``write()`` inserts the events of a save or delete into ``django_sse_outbox`` on the saving
connection, inside its ``atomic()`` block: they commit with the change or roll back with it. An
``on_commit`` hook then relays: it publishes the pending rows in id order and deletes them in
one transaction, so a row is deleted only if its publish returned. When publishing fails (the
broker is down) or the process dies between its commit and the publish, the rows stay, and the
next relay publishes them: the hook of the next commit on that database, the periodic relay of
every process that serves streams (``OUTBOX_RELAY_INTERVAL``), or ``manage.py sse_relay``.

A save outside ``atomic()`` (autocommit) has committed before ``post_save`` runs, so no row can
share its transaction: its events are published at once and go to the outbox only if that
fails, or if older events wait there (then they are relayed behind those). A crash between such
a save and its publish loses the event; inside ``atomic()`` (or ``ATOMIC_REQUESTS``) it does not.

Several relays may run at once (processes committing at the same moment). On databases with
``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL, MySQL 8, Oracle) each takes rows nobody else
holds, and one that sees older rows held by another relay backs off, so that a group never
receives a newer event before an older one. SQLite has no row locks: a relay starts with a write,
which takes the database's write lock, so relays run one after the other. Publishing happens
inside that transaction, so on SQLite other writers wait for the publish (normally a
millisecond; when the broker hangs, up to its timeout, and a writer whose SQLite ``timeout``
is shorter fails with "database is locked").

Delivery is at least once: a relay killed after publishing and before its commit leaves its rows
to be published again.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.signals import setting_changed
from django.db import DatabaseError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Subquery
from django.dispatch import receiver

from .. import conf
from ..encoding import json_bytes
from ..events import ServerSentEvent
from ..models import OutboxEvent
from .publish import publish_many_sync

logger = logging.getLogger("django_sse")

# Rows per relay transaction: bounds how long one holds its locks and how much it holds in memory.
BATCH = 100
# How long a database without the outbox table is taken at its word before it is asked again.
MISSING_TABLE_RECHECK = 30.0

Event = tuple[list[str], str, Any]  # (groups, event name, JSON-able payload)


class RelayBusy(Exception):
    """Another relay holds older rows (or took these): it, or a later relay, publishes them."""


def publish_events(events: list[tuple[str, ServerSentEvent]]) -> None:
    """The one place model events reach the channel layer (the tests record what passes here)."""
    publish_many_sync(events)


@dataclass
class _Pending:
    """What one connection wrote to the outbox since its last relay."""

    dirty: bool = False
    high: int = 0  # the highest id written: the hook relays at least up to it


class _Registry:
    """Per-process outbox state, reset when the settings change (tests)."""

    def __init__(self) -> None:
        self.pending: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Pending] = (
            weakref.WeakKeyDictionary()
        )
        # alias -> (table exists, when it was checked)
        self.tables: dict[str, tuple[bool, float]] = {}
        self.lock = threading.Lock()

    def for_connection(self, connection: BaseDatabaseWrapper) -> _Pending:
        state = self.pending.get(connection)
        if state is None:
            state = self.pending[connection] = _Pending()
        return state

    def has_table(self, using: str) -> bool:
        known = self.tables.get(using)
        if known is not None and (known[0] or time.monotonic() - known[1] < MISSING_TABLE_RECHECK):
            return known[0]
        connection = connections[using]
        with connection.cursor() as cursor:
            exists = OutboxEvent._meta.db_table in connection.introspection.table_names(cursor)
        if not exists:
            logger.error(
                "The django_sse outbox table is missing in database %r: run manage.py migrate. "
                "Until then model events are published straight from on_commit and are lost "
                "if that fails.",
                using,
            )
        self.tables[using] = (exists, time.monotonic())
        return exists


_registry = _Registry()


@receiver(setting_changed)
def _reset(**kwargs: Any) -> None:
    if kwargs["setting"] in ("DATABASES", "DJANGO_SSE"):
        global _registry
        _registry = _Registry()


def messages(events: Iterable[Event]) -> list[tuple[str, ServerSentEvent]]:
    """``(group, event)`` pairs for ``publish_many``: one per group of each event."""
    return [
        (group, ServerSentEvent(event=name, data=data))
        for groups, name, data in events
        for group in groups
    ]


def write(using: str, events: Sequence[Event]) -> bool:
    """Add ``events`` to the outbox in the current transaction of ``using``; relay on commit.

    Returns ``False`` (doing nothing) when the database has no outbox table.
    """
    if not events:
        return True
    if not _registry.has_table(using):
        return False
    connection = connections[using]
    if not connection.in_atomic_block and connection.get_autocommit():
        _write_in_autocommit(using, events)
        return True
    _insert(using, events)
    if connection.in_atomic_block:
        # One hook per write, so that Django drops it with a rolled-back savepoint exactly like
        # the rows; the first hook of a commit relays, the others find nothing to do.
        transaction.on_commit(partial(_relay_after_commit, using), using=using, robust=True)
    # Else manual transaction management (set_autocommit(False)): Django has no commit hook
    # there; the rows commit with the caller's commit and the next relay publishes them.
    return True


def _insert(using: str, events: Sequence[Event]) -> None:
    rows = OutboxEvent.objects.using(using).bulk_create(
        [
            OutboxEvent(groups=" ".join(groups), event=name, data=json_bytes(data).decode())
            for groups, name, data in events
        ]
    )
    ids = [row.id for row in rows]
    state = _registry.for_connection(connections[using])
    state.dirty = True
    # Without RETURNING from bulk inserts the ids are unknown: relay everything pending.
    state.high = max(state.high, max(ids) if None not in ids else sys.maxsize)


def _write_in_autocommit(using: str, events: Sequence[Event]) -> None:
    # Outside atomic() Django runs post_save after the row has committed: no outbox row can
    # share that transaction, and writing one first would only add two commits per save. So
    # publish at once, and keep the events in the outbox when that fails, or when older events
    # wait there (they go first: a group gets its events in the order they were committed).
    if not OutboxEvent.objects.using(using).exists():
        try:
            publish_events(messages(events))
            return
        except Exception as exc:
            _log_failure(using, exc)
            _insert(using, events)
            return
    _insert(using, events)
    relay_quietly(using)


def _relay_after_commit(using: str) -> None:
    state = _registry.for_connection(connections[using])
    if not state.dirty:
        return
    high, state.dirty, state.high = state.high, False, 0
    relay_quietly(using, until=high)


def relay_quietly(using: str, until: int | None = None) -> int:
    """``relay()``, logging instead of raising: the rows of a failed relay stay for the next."""
    try:
        return relay(using, until=until)
    except RelayBusy:
        logger.debug("Outbox of %r: another relay is at work", using)
    except Exception as exc:
        if _is_sqlite_lock(using, exc):
            logger.debug("Outbox of %r: another relay holds the database", using)
        else:
            _log_failure(using, exc)
    return 0


def _log_failure(using: str, exc: Exception) -> None:
    logger.warning(
        "Could not publish model events of database %r (%s: %s): they stay in the outbox "
        "until the next relay (the next commit, a server's periodic relay, or "
        "manage.py sse_relay).",
        using,
        type(exc).__name__,
        exc,
    )


def _is_sqlite_lock(using: str, exc: Exception) -> bool:
    return (
        isinstance(exc, DatabaseError)
        and connections[using].vendor == "sqlite"
        and "locked" in str(exc)
    )


def relay(using: str = "default", *, until: int | None = None) -> int:
    """Publish the outbox rows of ``using`` in id order, deleting each batch once published.

    Goes on while batches are full (and, with ``until``, until the rows up to that id are done).
    Returns how many rows were published. Raises ``RelayBusy`` when another relay holds older
    rows, and whatever publishing raised (the batch then stays in the outbox).
    """
    total = 0
    while True:
        count, last = _relay_batch(using)
        total += count
        if count == 0 or (until is None and count < BATCH) or (until and last >= until):
            return total


def _relay_batch(using: str) -> tuple[int, int]:
    features = connections[using].features
    outbox = OutboxEvent.objects.using(using)
    with transaction.atomic(using=using):
        if not features.has_select_for_update:
            # SQLite: a write takes the database's write lock, and taking it first makes a
            # concurrent relay wait for this one to commit (and then see what is left) instead
            # of failing to turn its read into a write.
            outbox.filter(id=-1).delete()
        queryset = outbox.order_by("id")
        if features.has_select_for_update_skip_locked:
            of = ("self",) if features.has_select_for_update_of else ()
            oldest = outbox.order_by("id").values("id")[:1]  # held by another relay or not
            queryset = queryset.select_for_update(skip_locked=True, of=of).annotate(
                oldest=Subquery(oldest)
            )
        rows = list(queryset[:BATCH])
        if not rows:
            return 0, 0
        if getattr(rows[0], "oldest", rows[0].id) < rows[0].id:
            raise RelayBusy  # publishing ours first would put them before older events
        ids = [row.id for row in rows]
        deleted, _ = outbox.filter(id__in=ids).delete()
        if deleted != len(rows):
            raise RelayBusy  # another relay took some meanwhile (a database without locks)
        publish_events(list(_events(rows)))
    return len(rows), ids[-1]


def _events(rows: Iterable[OutboxEvent]) -> Iterable[tuple[str, ServerSentEvent]]:
    return messages((row.groups.split(), row.event, json.loads(row.data)) for row in rows)


def databases() -> list[str]:
    """The database aliases the outbox table is migrated to (the router decides)."""
    return [alias for alias in connections if router.allow_migrate_model(alias, OutboxEvent)]


def relay_all(close: bool = False) -> int:
    """One quiet relay pass over every outbox database; ``close`` its connections after."""
    total = 0
    for alias in databases():
        try:
            if _registry.has_table(alias):
                total += relay_quietly(alias)
        except Exception as exc:  # the database is unreachable, say: the next pass retries
            logger.warning("Outbox relay pass on database %r failed: %s", alias, exc)
        finally:
            if close:
                connections[alias].close()
    return total


class PeriodicRelay:
    """While this process serves streams, relay every ``OUTBOX_RELAY_INTERVAL`` seconds.

    A thread, so that the relay's database work and its publish run as any sync code does and
    never on a server's event loop. It ends by itself once no stream is served, and closes its
    database connections after each pass: an idle process holds none.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        try:
            interval = conf.get("OUTBOX_RELAY_INTERVAL")
            if not conf.get("OUTBOX") or not interval:
                return
            interval = float(interval)
        except Exception as exc:  # never fail the stream that started it
            logger.error("No periodic outbox relay: %s", exc)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(interval,), name="django_sse-relay", daemon=True
                )
                self._thread.start()

    def _serving(self) -> bool:
        from .hub import listening_loops

        with self._lock:
            if listening_loops():
                return True
            self._thread = None
            return False

    def _run(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            if not self._serving():
                return
            relay_all(close=True)


periodic_relay = PeriodicRelay()
