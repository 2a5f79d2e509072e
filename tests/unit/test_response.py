"""EventSourceResponse in process: headers, pings, priming, sync sources, closing, WSGI."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from django.conf import settings
from django.http import Http404
from django.test import AsyncClient, Client, override_settings

from django_sse import EventSourceResponse, ServerSentEvent, publish, subscribe
from django_sse.live.hub import get_hub
from django_sse.stream import OPENING
from tests.support.client_responses import async_content, sync_content
from tests.support.sse_parser import parse
from tests.support.waiting import until_async


async def collect(response: EventSourceResponse) -> bytes:
    return b"".join([chunk async for chunk in response])


def test_default_headers() -> None:
    response = EventSourceResponse([])
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    assert response["X-Accel-Buffering"] == "no"
    assert response.streaming


def test_headers_passed_by_the_view_are_kept_and_win() -> None:
    response = EventSourceResponse([], headers={"cache-control": "private", "X-Custom": "1"})
    assert response["Cache-Control"] == "private"
    assert response["X-Custom"] == "1"
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"


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
    pinged = asyncio.Event()

    async def source() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data=1, id="1")
        try:
            await pinged.wait()  # silent until the response has pinged over this pending step
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        yield ServerSentEvent(data=2, id="2")

    body = b""
    async with asyncio.timeout(30):
        async for chunk in EventSourceResponse(source(), ping_interval=0.05):
            body += chunk
            if b"data: 1\n\n" in body and body.count(b": ping\n\n") >= 2:
                pinged.set()
    parsed = parse(body)
    assert [e.data for e in parsed.events] == ["1", "2"]
    assert cancelled == []
    _first, rest = body.split(b"data: 1\n\n", 1)
    between, after = rest.split(b"data: 2", 1)
    assert between.count(b": ping\n\n") >= 2
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
        await asyncio.sleep(0)  # raised after a suspension, not on the first step
        raise Http404("gone")
        yield 1

    with pytest.raises(Http404):
        await EventSourceResponse(source()).prime(wait=5)


async def test_prime_does_not_wait_for_a_slow_first_event() -> None:
    async def source() -> AsyncIterator[int]:
        await asyncio.Event().wait()  # a first event that never comes
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
            await asyncio.sleep(3600)  # an event that never comes
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


@pytest.mark.urls("tests.support.urls")
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
            await asyncio.sleep(3600)  # an event that never comes
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


async def test_a_primed_response_dropped_unstarted_leaves_its_group_without_a_collection() -> None:
    # Django drops a primed response unsent when its client leaves first; outside a request's
    # context (no request_finished to go by) only the response's going can release the
    # subscription, which the hub holds. No garbage collection: that may be long in coming.
    from django_sse import limits

    hub = get_hub()
    before = limits.open_streams.open(limits.PROCESS)
    gc.disable()
    try:
        response = EventSourceResponse(subscribe("test-primed-dropped"))
        await response.prime(wait=0)
        assert hub.stats()["subscribers"] == 1
        del response
        await until_async(lambda: hub.stats()["subscribers"] == 0 and not hub.stats()["groups"])
        assert limits.open_streams.open(limits.PROCESS) == before
    finally:
        gc.enable()


# --- A real async response: what Django's middleware and test clients see ---


async def test_the_response_is_async_for_every_kind_of_source() -> None:
    async def source() -> AsyncIterator[int]:
        yield 1

    def sync_source() -> Iterator[int]:
        yield 1

    for response in [
        EventSourceResponse(source()),
        EventSourceResponse(sync_source()),
        EventSourceResponse(subscribe("test-response.kinds")),
        EventSourceResponse(status=204),
    ]:
        assert response.is_async
        assert hasattr(response.streaming_content, "__aiter__")
    with pytest.raises(TypeError, match="AsyncClient"):
        iter(EventSourceResponse(source()).streaming_content)
    body = b"".join([chunk async for chunk in EventSourceResponse(source()).streaming_content])
    assert parse(body).events[0].data == "1"


@pytest.mark.urls("tests.support.urls")
async def test_async_client_reads_a_stream() -> None:
    response = await AsyncClient().get("/test/gaps?count=3&gap=0.01")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    body = b"".join([chunk async for chunk in async_content(response)])
    assert [e.data for e in parse(body).events] == ['{"n":0}', '{"n":1}', '{"n":2}']


@pytest.mark.urls("tests.support.urls")
async def test_async_client_reads_a_subscription_event_by_event() -> None:
    response = await AsyncClient().get("/test/live/open/response-client")
    stream = async_content(response)
    assert await anext(stream) == OPENING  # subscribed: the middleware primed it
    event_id = await publish("x.response-client", {"a": 1})
    assert await anext(stream) == f'data: {{"a":1}}\nid: {event_id}\n\n'.encode()
    await stream.aclose()  # type: ignore[attr-defined]
    await until_async(lambda: "x.response-client" not in get_hub().groups())


@pytest.mark.urls("tests.support.urls")
@pytest.mark.django_db
def test_the_sync_client_fails_naming_the_async_client() -> None:
    with pytest.raises(RuntimeError, match="AsyncClient"):
        Client().get("/test/gaps?count=1")  # EventStreamMiddleware says so at once


@pytest.mark.urls("tests.support.urls")
@pytest.mark.django_db
def test_without_the_middleware_reading_with_the_sync_client_fails_naming_the_async_client() -> (
    None
):
    middleware = [m for m in settings.MIDDLEWARE if "EventStreamMiddleware" not in m]
    with override_settings(MIDDLEWARE=middleware):
        response = Client().get("/test/gaps?count=1")
        with pytest.raises(TypeError, match="AsyncClient"):
            list(sync_content(response))
        with pytest.raises(TypeError, match="AsyncClient"):
            response.getvalue()


@pytest.mark.urls("tests.support.urls")
@pytest.mark.django_db
def test_the_sync_client_reads_a_sync_source() -> None:
    response = Client().get("/test/sync?count=3")
    body = b"".join(sync_content(response))
    assert [e.data for e in parse(body).events] == ["0", "1", "2"]


@pytest.mark.urls("tests.support.urls")
async def test_gzip_middleware_leaves_the_stream_uncompressed_and_async() -> None:
    middleware = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        response = await AsyncClient().get(
            "/test/gaps?count=2&gap=0.01", headers={"Accept-Encoding": "gzip"}
        )
        assert response["Content-Encoding"] == "identity"
        body = b"".join([chunk async for chunk in async_content(response)])
    assert [e.data for e in parse(body).events] == ['{"n":0}', '{"n":1}']


# --- ping_interval and headers ---


def test_content_type_says_utf_8() -> None:
    assert EventSourceResponse([])["Content-Type"] == "text/event-stream; charset=utf-8"


@pytest.mark.parametrize("value", [-42, -0.5, float("nan"), float("inf"), float("-inf")])
def test_ping_interval_out_of_range_is_a_value_error(value: float) -> None:
    with pytest.raises(ValueError, match="ping_interval"):
        EventSourceResponse([], ping_interval=value)


@pytest.mark.parametrize("value", ["ten", "15", True, False, [15], object()])
def test_ping_interval_that_is_no_number_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="ping_interval"):
        EventSourceResponse([], ping_interval=value)  # type: ignore[arg-type]


def test_ping_interval_defaults_to_the_setting_and_is_validated_there_too() -> None:
    assert EventSourceResponse([]).ping_interval == 15.0
    assert EventSourceResponse([], ping_interval=0).ping_interval == 0.0
    with override_settings(DJANGO_SSE={"PING_INTERVAL": -1}):
        with pytest.raises(ValueError, match="ping_interval"):
            EventSourceResponse([])


async def test_ping_interval_assigned_after_construction_is_used() -> None:
    async def source() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(3600)  # an event that never comes
        yield 2

    response = EventSourceResponse(source(), ping_interval=3600)
    with pytest.raises(ValueError):
        response.ping_interval = -1
    assert response.ping_interval == 3600
    response.ping_interval = 0.05
    stream = aiter(response)
    received = b""
    async with asyncio.timeout(10):
        while b": ping" not in received:
            received += await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
