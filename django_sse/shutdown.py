"""Process exit with streams still open: finish what the server left on its event loop.

Daphne stops its reactor, and with it the asyncio loop, as soon as the application instances it
cancelled have returned. On Django 5.2 their children are still pending then (``ASGIHandler``
does not cancel its two tasks when it is cancelled itself): the streams, Django's disconnect
listeners, and the hub's receive task, which waits in the in-memory layer's ``asyncio.Queue.get``.
Nothing runs that loop again; the interpreter's last garbage collections close those coroutines
after the ``_asyncio`` module was torn down. On CPython up to 3.11.7 a coroutine closed inside
``Queue.get`` there formats the repr of its future with a module global already cleared:
"Fatal Python error: Segmentation fault" (python/cpython#113566, fixed in 3.11.8).

So at exit, every loop that served a hub and was left stopped but open gets what
``asyncio.run`` gives its loop when the main coroutine returns: the tasks still pending are
cancelled and run to their end while the interpreter is whole, and the streams' ``finally``
blocks (the releases of their subscriptions) run too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

logger = logging.getLogger("django_sse")

# Long enough for cleanups, short enough that a stuck one cannot hold up the exit for long.
FINISH_TIMEOUT = 5.0


def finish_abandoned_loops(loops: Callable[[], Iterable[asyncio.AbstractEventLoop]]) -> None:
    """Cancel and await the tasks of every loop of ``loops()`` that stopped without being closed.

    The live layer registers this at exit with its hubs' loops (apps.py): this module knows
    nothing of hubs.
    """
    for loop in loops():
        if loop.is_running() or loop.is_closed():
            continue  # asyncio.run (uvicorn) finished it itself; or it is not ours to touch
        try:
            _finish(loop)
        except Exception:
            logger.exception("Could not finish the tasks left on a stopped event loop")


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    deadline = loop.time() + FINISH_TIMEOUT
    # A task's cleanup may start another (a subscriber's release spawns the hub's): repeat.
    while pending := asyncio.all_tasks(loop):
        remaining = deadline - loop.time()
        if remaining <= 0:
            logger.warning("%d tasks still running at exit, left unfinished", len(pending))
            return
        for task in pending:
            # One already cancelled may be awaiting its own cleanup (channels_redis' pubsub
            # receive unsubscribes): cancelling it again would cut that cleanup short.
            if not task.cancelling():
                task.cancel()
        loop.run_until_complete(asyncio.wait(pending, timeout=remaining))
