"""The demo's views on a real Daphne: an item's stream exists only for an item that exists."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.servers import manage

pytestmark = pytest.mark.server


def test_an_item_stream_answers_404_for_an_id_that_names_no_item(
    start: StartServer, server_database: str
) -> None:
    code = (
        "from demo_project.items.models import Item\n"
        f"print(Item.objects.create(name={'x-' + uuid.uuid4().hex!r}, price='1.00').pk)"
    )
    pk = manage("shell", "--no-imports", "-c", code, env={"DATABASE_URL": server_database})
    pk = pk.strip().splitlines()[-1]
    server = start("daphne")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # Streamed: were it a 200 event stream, reading its whole body would never end.
        with client.stream("GET", "/items/99999999/live") as missing:
            assert missing.status_code == 404
            assert not missing.headers["content-type"].startswith("text/event-stream")
        with client.stream("GET", f"/items/{pk}/live") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert next(stream.iter_lines()) == ": open"
