"""Streams whose request Django 5.2 abandoned: a stream must not outlive its ASGI instance.

Django 5.2's ``ASGIHandler.handle`` runs the response in a task of its own (``process_request``)
and waits for it, or for ``http.disconnect``, with ``asyncio.wait``. A server that cancels the
application instance (Daphne, once a disconnected client's app has run past
``--application-close-timeout``, measured 10 s under overload; uvicorn at the end of
``--timeout-graceful-shutdown``) cancels only ``handle``: ``asyncio.wait`` does not cancel what
it waits for, so ``process_request`` streams on, into a connection the server has forgotten,
and its subscriber stays in the hub for good. (Django 6 streams in the instance's own task,
which the server's cancel reaches.)

Nothing public tells that task that its parent is gone, but asyncio does: a task somebody waits
for carries that waiter's done callback (``asyncio.wait``'s, then ``handle``'s own ``await``),
and the one ``handle`` abandoned carries none. So each loop checks the tasks of its streams
every ``CHECK_INTERVAL`` seconds, off the event path, and cancels it as Django would have.
"""

from __future__ import annotations

import asyncio
import weakref

# Django 5.2's per-request task (django/core/handlers/asgi.py, ASGIHandler.handle).
_REQUEST_TASK = "ASGIHandler.handle.<locals>.process_request"

CHECK_INTERVAL = 5.0


def watch_current_request() -> None:
    """Cancel the current task if it is Django 5.2's request task and ``handle`` abandons it."""
    task = asyncio.current_task()
    if task is None or getattr(task.get_coro(), "__qualname__", None) != _REQUEST_TASK:
        return
    # One timer per loop for all its streams, not one per stream: an idle stream's timer handle
    # and its arguments were ~240 B of what it holds (bench.idle_memory); a set entry is ~32 B.
    loop = task.get_loop()
    tasks = _watched.get(loop)
    if tasks is None:
        tasks = _watched[loop] = set()
        loop.call_later(CHECK_INTERVAL, _check, loop, tasks)
    tasks.add(task)


# The request tasks each loop watches (a loop without any has no timer and no entry).
_watched: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Task[object]]] = (
    weakref.WeakKeyDictionary()
)


def _check(loop: asyncio.AbstractEventLoop, tasks: set[asyncio.Task[object]]) -> None:
    for task in list(tasks):
        if task.done():
            tasks.discard(task)
        # ``_callbacks`` is the list asyncio keeps of done callbacks (its reprs read it too); a
        # Python without it is never taken for abandoned.
        elif not getattr(task, "_callbacks", True):
            tasks.discard(task)
            task.cancel()
    if tasks:
        loop.call_later(CHECK_INTERVAL, _check, loop, tasks)
    elif _watched.get(loop) is tasks:
        del _watched[loop]
