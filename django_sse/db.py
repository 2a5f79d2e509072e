"""Let go of the database connection a request opened before its stream goes idle.

Under ASGI, Django runs a request's sync code (session and authentication middleware, the async
ORM) in a thread of that request's own, and closes its connection only when the response ends.
For an event stream that is hours later: 1,000 idle streams would hold 1,000 connections. The
connection belongs to that thread, so it has to be closed from there.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connections


def _close_idle_connections() -> None:
    for connection in connections.all(initialized_only=True):
        # Inside atomic() the connection is still needed (and closing it would break the block).
        if not connection.in_atomic_block:
            connection.close()


async def release_database_connections() -> None:
    """Close the calling request's database connections (they reopen on demand)."""
    await sync_to_async(_close_idle_connections, thread_sensitive=True)()
