"""Server stop (SIGTERM, Ctrl-C): end every open stream first, then let the server stop.

No ASGI server ends an endless response on its own when it is told to stop, and none says so
to the application in a way every server shares: Daphne stops its reactor and drops the
application instances (their generators' ``finally`` blocks never run); uvicorn and hypercorn
wait for the responses to finish (uvicorn forever by default, hypercorn until its graceful
timeout, then it cancels them); ASGI's lifespan shutdown comes only after the connections
closed, and Django does not speak lifespan anyway. What every server does share is the signal
it receives.

So when the first stream starts on the main thread (by then the server has installed its own
handlers), django_sse puts a handler in front of the server's SIGTERM and SIGINT handlers.
On the first signal it ends every open stream with a jittered ``retry:`` (so that thousands of
browsers do not come back in the same second), waits until their generators have been closed
(their ``finally`` ran, their subscriptions left their groups) and Django has finished their
requests (at most ``DRAIN_TIMEOUT``), and then calls the server's handler, which stops the
server as it always does. A stream opened while the server stops gets the same ``retry:`` and
ends at once. A second signal goes to the server's handler straight away.

Only a handler the server installed in Python is chained: a signal left at its default or
ignored (a Daphne started as a background job ignores SIGINT) is not taken over. hypercorn's
worker gets no signal at all (its parent takes them): there the worker's shutdown event is
watched instead (``hypercorn_shutdown_event``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .encoding import jittered_retry

if TYPE_CHECKING:
    from .stream import ClosableBody

logger = logging.getLogger("django_sse")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long the server's own handler waits for the streams' cleanups, at most: they take well
# under a second; a thousand streams on a busy machine took Daphne 3 s.
DRAIN_TIMEOUT = 5.0
# The reconnection delay told to every stream ended by a stop, in milliseconds: random in this
# range, so that the clients of a restarted server come back spread over a few seconds.
RETRY_AFTER_STOP_MS = (1000, 5000)

Handler = Callable[[int, FrameType | None], Any]


def retry_after_stop() -> bytes:
    return jittered_retry(RETRY_AFTER_STOP_MS)


class StopSignals:
    """The signals that stop the server, taken before its own handlers (see the module docstring).

    ``ServerStop`` below provides ``stop``: what to do on the first signal.
    """

    def __init__(self) -> None:
        self.stopping = False
        self._previous: dict[int, Handler] = {}
        self._watching = False

    def stop(self, then: Callable[[], None]) -> None:
        """End every open stream, then call ``then`` (the server's own handler)."""
        raise NotImplementedError

    def watch_signals(self) -> None:
        """Chain our handler in front of the server's; only the main thread can."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._watching = True
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if callable(previous) and previous is not self._on_signal:
                self._previous[signum] = previous
                signal.signal(signum, self._on_signal)

        self._watch_hypercorn_worker()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            self._pass_on(signum, frame)  # a second signal: the server's own way, at once
            return
        self.stop(lambda: self._pass_on(signum, frame))

    def _watch_hypercorn_worker(self) -> None:
        """hypercorn serves from a worker process that never sees the signal (see below)."""
        event = hypercorn_shutdown_event()
        if event is None:
            return
        task = asyncio.get_running_loop().create_task(self._wait_for(event))
        _background.add(task)

    async def _wait_for(self, event: Any) -> None:
        # hypercorn's worker polls the same event ten times a second, then waits for the
        # responses until its graceful timeout and cancels them: be first.
        # A multiprocessing event cannot wake a loop: polled, as hypercorn does.
        try:
            while not event.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        except Exception:  # an event of another kind than the one checked: stop watching
            logger.exception("django_sse stopped watching hypercorn's shutdown event")
            return
        if not self.stopping:
            self.stop(lambda: None)

    def _pass_on(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous.get(signum)
        if previous is not None:
            previous(signum, frame)


class ServerStop(StopSignals):
    """This process's open streams, ended when the server is told to stop."""

    def __init__(self) -> None:
        super().__init__()
        self._streams: weakref.WeakSet[ClosableBody] = weakref.WeakSet()
        # forget() comes from the thread Django closes responses in; reentrant because the
        # signal handler may interrupt the main thread while it holds the lock.
        self._lock = threading.RLock()
        # Set (on its loop) once the last stream is gone, while the server stops.
        self._drained: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def track(self, stream: ClosableBody) -> None:
        """A stream started (on its loop's thread): it is ended when the server stops."""
        with self._lock:
            self._streams.add(stream)
        if not self._watching:
            self.watch_signals()

    def forget(self, stream: ClosableBody) -> None:
        """Django finished the stream's request (from any thread)."""
        with self._lock:
            self._streams.discard(stream)
            left = len(self._streams)
        if self._drained is not None and not left:
            loop, drained = self._drained
            loop.call_soon_threadsafe(drained.set)

    def _open(self) -> list[ClosableBody]:
        with self._lock:
            return list(self._streams)

    def stop(self, then: Callable[[], None]) -> None:
        """End every open stream, then (once they are closed, or soon after) call ``then``."""
        self.stopping = True
        streams = self._open()
        if not streams:
            then()
            return
        logger.info("Server stopping: ending %d event streams", len(streams))
        loops = {stream.loop for stream in streams if stream.loop is not None}
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._stop_streams, loop)
            except RuntimeError:  # closed
                continue
        main: asyncio.AbstractEventLoop | None
        try:
            main = asyncio.get_running_loop()
        except RuntimeError:
            main = next(iter(loops), None)
        if main is None or main.is_closed():
            then()
            return
        main.call_soon_threadsafe(self._drain_then, main, then)

    def _stop_streams(self, loop: asyncio.AbstractEventLoop) -> None:
        for stream in self._open():
            if stream.loop is loop:
                stream.stop()

    def _drain_then(self, loop: asyncio.AbstractEventLoop, then: Callable[[], None]) -> None:
        drained = asyncio.Event()
        self._drained = (loop, drained)
        if not self._open():
            drained.set()
        task = loop.create_task(self._drain(drained))
        task.add_done_callback(lambda _: then())
        _background.add(task)

    async def _drain(self, drained: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(drained.wait(), DRAIN_TIMEOUT)
        except TimeoutError:
            pass
        if left := self._open():
            logger.warning("%d event streams still open when the server stopped", len(left))


def hypercorn_shutdown_event() -> Any:
    """The event hypercorn's parent process sets to stop this worker, if this is one.

    hypercorn (``--workers 1``, its default, and more) takes SIGTERM and SIGINT in its parent
    process, which sets a ``multiprocessing`` event that the worker polls; the worker itself
    gets no signal, and hypercorn tells the application nothing before it cancels the responses
    (not in the scope, its extensions or the lifespan state: Django speaks no lifespan, and
    lifespan's shutdown comes after the connections closed). The event is the worker function's
    ``shutdown_event`` argument, kept by the worker's ``Process`` object: private attributes of
    ``multiprocessing``, read here because nothing public says it. Checked against the hypercorn
    releases the tests run (tests/scenarios/test_server_stop.py). Fail safe: where it is not
    found, this logs a warning and returns None. Then on Python 3.11 hypercorn cancels the
    streams after its graceful timeout (their ``finally`` blocks still run, without the
    ``retry:``); on Python >= 3.12.1 it waits for their clients to leave, as asyncio's
    ``Server.wait_closed()`` now waits for every connection before hypercorn's graceful
    timeout starts.
    """
    import multiprocessing

    process = multiprocessing.current_process()
    if not _is_hypercorn_worker(process):
        return None
    kwargs = getattr(process, "_kwargs", None)
    event = kwargs.get("shutdown_event") if isinstance(kwargs, dict) else None
    if callable(getattr(event, "is_set", None)):
        return event
    logger.warning(
        "django_sse cannot find hypercorn %s's shutdown event in this worker: on SIGTERM or "
        "Ctrl-C, event streams are not ended by django_sse (hypercorn cancels them after its "
        "--graceful-timeout on Python 3.11, and waits for their clients on Python >= 3.12). "
        "hypercorn --workers 0 avoids it.",
        _version("hypercorn"),
    )
    return None


def _is_hypercorn_worker(process: Any) -> bool:
    """A process started by hypercorn's ``run`` to serve (not hypercorn's main process)."""
    import multiprocessing
    import sys

    if multiprocessing.parent_process() is None:
        return False  # the main process: hypercorn --workers 0, or not hypercorn at all
    target = getattr(process, "_target", None)
    if target is not None:
        return str(getattr(target, "__module__", "")).startswith("hypercorn.")
    # multiprocessing itself changed: a spawned child that loaded hypercorn's workers.
    return "hypercorn.asyncio.run" in sys.modules or "hypercorn.trio.run" in sys.modules


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "(unknown version)"


# Tasks under way: the loop keeps only weak references to tasks.
_background: set[asyncio.Task[None]] = set()

server_stop = ServerStop()
