"""EventSourceResponse on a real Daphne (and uvicorn) process, read by real clients."""

from __future__ import annotations

import time

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import StartServer
from tests.servers import ServerProcess
from tests.sse_parser import parse

pytestmark = pytest.mark.server


def read_all(url: str, **kwargs: object) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        response = client.get(url, **kwargs)  # type: ignore[arg-type]
        return response


def test_demo_items_stream(daphne: ServerProcess) -> None:
    response = read_all(daphne.url + "/items/stream")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    parsed = parse(response.content)
    assert parsed.comments[0] == "stream of item updates"
    assert [(e.type, e.data, e.last_event_id) for e in parsed.events] == [
        ("item_update", '{"name":"Plumbus","price":32.99}', "1"),
        ("item_update", '{"name":"Portal Gun","price":999.99}', "2"),
    ]
    assert parsed.retry == 5000
