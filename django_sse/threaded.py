"""Iterate a synchronous iterable off the event loop, one item at a time.

Django itself would ``list()`` a sync iterator under ASGI, which never ends for a stream. Each
stream gets one worker thread of its own, so that a generator that touches the ORM keeps using
the same thread (and database connection) and never blocks the thread shared by sync views.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar, cast

from django.db import connections

T = TypeVar("T")
_END = object()


def _close(iterator: Iterator[object] | None) -> None:
    try:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    finally:
        connections.close_all()


async def iterate_in_thread(iterable: Iterable[T]) -> AsyncIterator[T]:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-sse-stream")
    context = contextvars.copy_context()
    iterator: Iterator[T] | None = None
    try:
        iterator = await loop.run_in_executor(executor, context.run, iter, iterable)
        step = partial(context.run, next, iterator, _END)
        while True:
            item = await loop.run_in_executor(executor, step)
            if item is _END:
                return
            yield cast(T, item)
    finally:
        # Queued behind a next() that may still be running: a thread cannot be interrupted, so
        # the generator's own finally runs as soon as its current step returns.
        executor.submit(context.run, _close, iterator)
        executor.shutdown(wait=False)
