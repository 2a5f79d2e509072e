"""``django_sse.testing``: its parser against the spec yardstick, and ``read_events``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from django.test import AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from django_sse import EventSourceResponse, ServerSentEvent, publish
from django_sse.live.hub import get_hub
from django_sse.testing import EventStreamParser, ReceivedEvent, read_events
from tests.support.client_responses import async_content
from tests.support.sse_parser import parse
from tests.support.waiting import until_async

# Streams made of the pieces the spec's rules are about: every line ending, BOMs, fields with
# and without a space after the colon, unknown fields, NUL in ids, bad retries, comments.
pieces = st.sampled_from(
    [
        "data: a", "data:b", "data", "data: ", "event: e", "event:", "id: 1", "id", "id: a\0b",
        "retry: 10", "retry: x1", ": c", ":", "bogus: x", " data: y", "\ufeff", "é", "\u2028",
        "\r\n", "\n", "\r", "\r\n", "\n",
    ]
)  # fmt: skip


def feed_in_chunks(stream: bytes, cuts: list[int]) -> tuple[EventStreamParser, list[ReceivedEvent]]:
    parser = EventStreamParser()
    events: list[ReceivedEvent] = []
    positions = sorted({c % (len(stream) + 1) for c in cuts})
    start = 0
    for end in [*positions, len(stream)]:
        events += parser.feed(stream[start:end])
        start = end
    return parser, events


@given(st.lists(pieces, max_size=40), st.lists(st.integers(0, 400), max_size=10))
def test_the_parser_agrees_with_the_spec_parser_however_the_stream_is_cut(
    text: list[str], cuts: list[int]
) -> None:
    stream = "".join(text).encode()
    expected = parse(stream)
    parser, events = feed_in_chunks(stream, cuts)
    assert [(e.event, e.data, e.id) for e in events] == [
        (e.type, e.data, e.last_event_id) for e in expected.events
    ]
    assert parser.comments == expected.comments
    assert parser.retry == expected.retry


def test_a_crlf_split_between_chunks_is_one_line_ending() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [ReceivedEvent(data="a")]
    assert parser.feed(b"\ndata: b\n\n") == [ReceivedEvent(data="b")]


def test_a_utf_8_character_split_between_chunks_survives() -> None:
    parser = EventStreamParser()
    encoded = "data: é\n\n".encode()
    assert parser.feed(encoded[:7]) == []
    assert parser.feed(encoded[7:]) == [ReceivedEvent(data="é")]


def test_received_events_decode_json_and_keep_id_and_retry() -> None:
    [event] = EventStreamParser().feed(b'retry: 500\nid: 7\nevent: goal\ndata: {"a": 1}\n\n')
    assert event == ReceivedEvent(data='{"a": 1}', event="goal", id="7", retry=500)
    assert event.json() == {"a": 1}


async def test_read_events_reads_a_response_directly() -> None:
    async def source() -> AsyncIterator[ServerSentEvent]:
        for n in range(3):
            yield ServerSentEvent(data={"n": n}, id=str(n))

    response = EventSourceResponse(source())
    first, second = await read_events(response, 2)
    assert (first.json(), second.id) == ({"n": 0}, "1")
    [third] = await read_events(response, 1)  # the stream stayed open for a second read
    assert third.json() == {"n": 2}
    with pytest.raises(AssertionError, match="ended after 0 of 1"):
        await read_events(response, 1)


async def test_read_events_times_out_saying_what_arrived() -> None:
    async def source() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(3600)  # an event that never comes
        yield 2

    with pytest.raises(TimeoutError, match=r"1 of 2 events within 0.2 s"):
        await read_events(EventSourceResponse(source()), 2, timeout=0.2)


async def test_read_events_refuses_a_response_that_is_not_an_async_stream() -> None:
    from django.http import HttpResponse

    with pytest.raises(TypeError, match="async streaming response"):
        await read_events(HttpResponse("x"), 1)


@pytest.mark.urls("tests.support.urls")
async def test_read_events_with_the_async_client_and_publish_in_between() -> None:
    response = await AsyncClient().get("/test/live/open/testing-client")
    first = await publish("x.testing-client", {"n": 1})
    [event] = await read_events(response, 1)
    assert (event.json(), event.id) == ({"n": 1}, first)
    await publish("x.testing-client", {"n": 2})
    assert [e.json() for e in await read_events(response, 1)] == [{"n": 2}]
    assert get_hub().groups() == {"x.testing-client": 1}


@pytest.mark.urls("tests.support.urls")
async def test_closing_the_streaming_content_releases_the_subscription() -> None:
    response = await AsyncClient().get("/test/live/open/testing-close")
    await publish("x.testing-close", 1)
    assert len(await read_events(response, 1)) == 1
    assert get_hub().groups() == {"x.testing-close": 1}
    await async_content(response).aclose()  # type: ignore[attr-defined]
    await until_async(lambda: not get_hub().groups())  # released on the loop, soon
