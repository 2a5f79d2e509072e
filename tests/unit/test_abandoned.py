"""A stream must not outlive its ASGI instance.

A server may cancel the application instance of a request whose client has gone: Daphne does
once the app has run past ``--application-close-timeout`` after the disconnect (10 s; under
overload it logged "took too long to shut down and was killed" 7,516 times beside two busy
loops), uvicorn at the end of ``--timeout-graceful-shutdown``. Django 5.2 runs the response in a
task of its own that this cancel does not reach: the stream went on into the forgotten
connection and its subscriber stayed in the hub for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import django
import pytest
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

from django_sse import abandoned
from django_sse.live.hub import get_hub
from tests.support.waiting import until_async
from tests.unit.test_middleware import hub_settled, scope


@pytest.mark.urls("tests.support.urls")
async def test_a_stream_whose_instance_the_server_killed_leaves_no_subscriber(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(abandoned, "CHECK_INTERVAL", 0.1)
    # What Daphne gives an instance: its input queue's get, and a send that drops what comes
    # for a connection that is gone.
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    sent: list[Mapping[str, Any]] = []

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    instance = asyncio.ensure_future(
        ASGIHandler()(scope("/test/live/open/killed"), queue.get, send)
    )
    await until_async(lambda: get_hub().stats()["subscribers"] == 1 and len(sent) >= 2)
    listeners = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "ASGIHandler.listen_for_disconnect"
    ]
    # The client left and the app took too long: Daphne queues http.disconnect and cancels the
    # instance, here in the same loop turn, as when the loop was too busy to run it in between.
    queue.put_nowait({"type": "http.disconnect"})
    instance.cancel()
    await asyncio.wait([instance])
    if django.VERSION < (6, 0):
        # Django 5.2's handler dies of the cancel. (Django 6.1's may end itself on the
        # disconnect and return instead: it does, every run, on Python 3.12.)
        assert instance.cancelled()
        # The orphaned listener reads the disconnect and ends with RequestAborted, which
        # nobody retrieves (and nobody cancels the response task it was there to cancel).
        (listener,) = listeners
        await asyncio.wait([listener])
        assert isinstance(listener.exception(), RequestAborted)
    state = await hub_settled()
    assert state["groups"] == {} and state["subscribers"] == 0, state
    assert state["tasks"] == 0, state


async def test_the_streams_of_one_loop_share_one_check_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An idle stream's own timer handle was ~240 B of what it holds (bench.idle_memory).
    async def request_task(started: asyncio.Event, done: asyncio.Event) -> None:
        abandoned.watch_current_request()
        started.set()
        await done.wait()

    monkeypatch.setattr(abandoned, "_REQUEST_TASK", request_task.__qualname__)
    loop = asyncio.get_running_loop()
    timers = len(loop._scheduled)  # type: ignore[attr-defined]
    done = asyncio.Event()
    starts = [asyncio.Event() for _ in range(3)]
    tasks = [asyncio.ensure_future(request_task(started, done)) for started in starts]
    for started in starts:
        await started.wait()
    assert len(loop._scheduled) == timers + 1  # type: ignore[attr-defined]
    done.set()
    await asyncio.wait(tasks)
