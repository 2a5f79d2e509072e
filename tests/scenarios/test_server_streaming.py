"""EventSourceResponse on the four real servers (tests/support/server_kinds.py), read by real
clients."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import StartServer
from tests.support.server_kinds import server_kinds
from tests.support.servers import ServerProcess
from tests.support.sse_parser import parse
from tests.support.waiting import until

pytestmark = pytest.mark.server


@pytest.fixture(params=server_kinds())
def server(request: pytest.FixtureRequest, start: StartServer) -> ServerProcess:
    return start(request.param, env={"DJANGO_SSE_PING_INTERVAL": "0.3"})


def get(url: str, **kwargs: object) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.get(url, **kwargs)  # type: ignore[arg-type]


def wait_for_file(path: Path) -> bool:
    return until(path.exists)


def test_items_stream_reproduces_the_fastapi_example(server: ServerProcess) -> None:
    response = get(server.url + "/items/stream")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["x-accel-buffering"] == "no"
    parsed = parse(response.content)
    assert parsed.comments[0] == "stream of item updates"
    assert [(e.type, e.data, e.last_event_id) for e in parsed.events] == [
        ("item_update", '{"name":"Plumbus","price":32.99}', "1"),
        ("item_update", '{"name":"Portal Gun","price":999.99}', "2"),
    ]
    assert parsed.retry == 5000


def test_items_stream_resumes_after_last_event_id(server: ServerProcess) -> None:
    with httpx.Client(timeout=30) as client:
        with connect_sse(
            client, "GET", server.url + "/items/stream", headers={"Last-Event-ID": "1"}
        ) as source:
            events = [(e.event, e.id, e.json()) for e in source.iter_sse()]
    assert events == [("item_update", "2", {"name": "Portal Gun", "price": 999.99})]
    after_query = parse(get(server.url + "/items/stream?lastEventId=2").content)
    assert after_query.events == []


def test_logs_stream_sends_raw_lines(server: ServerProcess) -> None:
    parsed = parse(get(server.url + "/logs/stream").content)
    assert [e.data for e in parsed.events] == [
        "2025-01-01 INFO Application started",
        "2025-01-01 DEBUG Connected to database",
    ]


def test_headers_and_an_opening_comment_arrive_before_a_late_first_event(
    server: ServerProcess,
) -> None:
    with httpx.Client(timeout=30) as client:
        with client.stream("GET", server.url + "/test/late?delay=4") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            chunks = response.iter_raw()
            first = next(chunks)
            assert first == b": open\n\n"  # not the event: the server did not wait for it
            rest = b"".join(chunks)
    assert [e.data for e in parse(first + rest).events] == ['"late"']


def test_pings_while_idle_and_no_event_lost_or_reordered(server: ServerProcess) -> None:
    body = get(server.url + "/test/gaps?count=5&gap=1.0").content
    parsed = parse(body)
    assert [e.data for e in parsed.events] == [f'{{"n":{i}}}' for i in range(5)]
    assert [e.last_event_id for e in parsed.events] == ["0", "1", "2", "3", "4"]
    # Ping interval 0.3 s, gaps of 1 s: every gap carries at least one ping, the end none.
    blocks = body.split(b"\n\n")
    data_positions = [i for i, block in enumerate(blocks) if b"data:" in block]
    for before, after in itertools.pairwise(data_positions):
        assert any(blocks[i] == b": ping" for i in range(before + 1, after))
    assert all(b"ping" not in block for block in blocks[data_positions[-1] + 1 :])


def test_disconnect_closes_the_generator(server: ServerProcess, markers: Path) -> None:
    with httpx.Client(timeout=30) as client:
        with connect_sse(client, "GET", server.url + "/test/endless?marker=gone") as source:
            for event in source.iter_sse():
                if event.id == "3":
                    break
    assert wait_for_file(markers / "gone.closed"), server.log()


def test_exceptions_before_the_first_event_become_error_responses(
    server: ServerProcess,
) -> None:
    statuses = {
        kind: get(server.url + f"/test/raise-before?kind={kind}").status_code
        for kind in ["404", "403", "400", "validation"]
    }
    assert statuses == {"404": 404, "403": 403, "400": 400, "validation": 500}


def test_exception_mid_stream_ends_it_cleanly_and_is_logged(server: ServerProcess) -> None:
    response = get(server.url + "/test/raise-middle")
    assert response.status_code == 200
    assert [e.data for e in parse(response.content).events] == ['"first"']
    until(lambda: "boom in the middle" in server.log())


def test_sync_generator_streams_and_is_closed(server: ServerProcess, markers: Path) -> None:
    parsed = parse(get(server.url + "/test/sync?count=4&marker=sync").content)
    assert [e.data for e in parsed.events] == ["0", "1", "2", "3"]
    assert wait_for_file(markers / "sync.closed")


def test_204_stops_reconnection(server: ServerProcess) -> None:
    response = get(server.url + "/test/no-content")
    assert response.status_code == 204
    assert response.content == b""


def test_view_headers_are_kept(server: ServerProcess) -> None:
    response = get(server.url + "/test/headers")
    assert response.headers["x-custom"] == "kept"
    assert response.headers["cache-control"] == "private, no-cache"
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
