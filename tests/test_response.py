"""EventSourceResponse in process: headers, pings, priming, sync sources, closing, WSGI."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from django.http import Http404
from django.test import AsyncClient

from django_sse import EventSourceResponse, ServerSentEvent
from django_sse.stream import OPENING
from tests.sse_parser import parse


async def collect(response: EventSourceResponse) -> bytes:
    return b"".join([chunk async for chunk in response])


def test_default_headers() -> None:
    response = EventSourceResponse([])
    assert response["Content-Type"] == "text/event-stream"
    assert "no-store" in response["Cache-Control"]
    assert response["X-Accel-Buffering"] == "no"
    assert response.streaming


def test_headers_passed_by_the_view_are_kept_and_win() -> None:
    response = EventSourceResponse([], headers={"cache-control": "private", "X-Custom": "1"})
    assert response["Cache-Control"] == "private"
    assert response["X-Custom"] == "1"
    assert response["Content-Type"] == "text/event-stream"


def test_content_must_be_iterable() -> None:
    with pytest.raises(TypeError, match="iterable"):
        EventSourceResponse(42)  # type: ignore[arg-type]


async def test_204_sends_no_body_and_does_not_touch_the_source() -> None:
    started = []

    async def source() -> AsyncIterator[int]:
        started.append(True)
        yield 1

    response = EventSourceResponse(source(), status=204)
    assert response.status_code == 204
    assert await collect(response) == b""
    assert started == []


async def test_events_in_order_after_an_opening_comment() -> None:
    async def source() -> AsyncIterator[object]:
        yield ServerSentEvent(data={"a": 1}, id="1")
        yield "two"
        yield ServerSentEvent()  # nothing to send: skipped, never a lone newline

    body = await collect(EventSourceResponse(source()))
    assert body.startswith(OPENING)
    assert [e.data for e in parse(body).events] == ['{"a":1}', '"two"']
    assert b"\n\n\n" not in body


async def test_pings_while_idle_never_cancel_the_pending_step() -> None:
    cancelled: list[bool] = []

    async def source() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data=1, id="1")
        try:
            await asyncio.sleep(0.3)  # six ping intervals of silence
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        yield ServerSentEvent(data=2, id="2")

    body = await collect(EventSourceResponse(source(), ping_interval=0.05))
    parsed = parse(body)
    assert [e.data for e in parsed.events] == ["1", "2"]
    assert cancelled == []
    _first, rest = body.split(b"data: 1\n\n", 1)
    between, after = rest.split(b"data: 2", 1)
    assert between.count(b": ping\n\n") >= 1
    assert b"ping" not in after  # nothing after the end


async def test_no_ping_while_events_flow() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(20):
            await asyncio.sleep(0.005)  # the spacing under test: far inside the 5 s interval
            yield i

    body = await collect(EventSourceResponse(source(), ping_interval=5))
    assert b"ping" not in body
    assert [e.data for e in parse(body).events] == [str(i) for i in range(20)]


async def test_prime_reraises_an_exception_raised_before_the_first_event() -> None:
    async def source() -> AsyncIterator[int]:
        await asyncio.sleep(0.01)
        raise Http404("gone")
        yield 1

    with pytest.raises(Http404):
        await EventSourceResponse(source()).prime(wait=5)


async def test_prime_does_not_wait_for_a_slow_first_event() -> None:
    async def source() -> AsyncIterator[int]:
        await asyncio.sleep(30)
        yield 1

    response = EventSourceResponse(source())
    await asyncio.wait_for(response.prime(wait=0.05), timeout=10)
    stream = response.__aiter__()
    assert await anext(stream) == OPENING
    await stream.aclose()  # type: ignore[attr-defined]


async def test_prime_keeps_a_ready_first_event_for_the_stream() -> None:
    async def source() -> AsyncIterator[int]:
        yield 1

    response = EventSourceResponse(source())
    await response.prime(wait=5)
    assert await collect(response) == b"data: 1\n\n"  # no opening comment needed


async def test_exception_mid_stream_is_logged_and_ends_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def source() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="django_sse"):
        body = await collect(EventSourceResponse(source()))
    assert [e.data for e in parse(body).events] == ["1"]
    assert "boom" in caplog.text


async def test_closing_the_stream_runs_the_generators_finally_at_once() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(3600)
        finally:
            closed.set()

    stream = EventSourceResponse(source()).__aiter__()
    assert b"data: 1" in await anext(stream) + await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_closing_while_the_source_is_parked_at_yield_closes_it_too() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        try:
            for i in range(10_000):
                yield i  # outruns the buffer: the pump parks it at a yield
        finally:
            closed.set()

    stream = EventSourceResponse(source()).__aiter__()
    assert await anext(stream) == OPENING
    assert (await anext(stream)).startswith(b"data: 0\n\n")
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed.is_set()


async def test_sync_iterables_run_in_their_own_thread_one_item_at_a_time() -> None:
    threads: list[str] = []
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            for i in range(3):
                threads.append(threading.current_thread().name)
                yield i
        finally:
            closed.set()

    body = await collect(EventSourceResponse(source()))
    assert [e.data for e in parse(body).events] == ["0", "1", "2"]
    assert threads and all(name.startswith("django-sse-stream") for name in threads)
    assert closed.wait(5)


async def test_an_endless_sync_generator_streams() -> None:
    def forever() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    stream = EventSourceResponse(forever()).__aiter__()
    received = b""
    while received.count(b"data:") < 5:
        received += await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]


def test_async_content_under_wsgi_fails_clearly() -> None:
    async def source() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(RuntimeError, match="ASGI server"):
        iter(EventSourceResponse(source()))


def test_sync_content_under_wsgi_streams_each_event() -> None:
    response = EventSourceResponse(iter([1, ServerSentEvent(raw_data="x")]))
    assert list(response) == [b"data: 1\n\n", b"data: x\n\n"]


@pytest.mark.urls("tests.urls")
async def test_middleware_turns_early_exceptions_into_error_responses() -> None:
    client = AsyncClient()
    assert (await client.get("/test/raise-before?kind=404")).status_code == 404
    assert (await client.get("/test/raise-before?kind=403")).status_code == 403
    assert (await client.get("/test/raise-before?kind=400")).status_code == 400


async def test_a_client_gone_while_priming_stops_the_source() -> None:
    started = asyncio.Event()
    closed = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        try:
            started.set()
            await asyncio.sleep(3600)
            yield 1
        finally:
            closed.set()

    response = EventSourceResponse(source())
    priming = asyncio.create_task(response.prime(wait=30))
    await asyncio.wait_for(started.wait(), 30)
    priming.cancel()  # what Django does when the client disconnects during the middleware
    with pytest.raises(asyncio.CancelledError):
        await priming
    assert closed.is_set()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
