"""The demo's pages in Chromium against a real Daphne."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.chromium import Console
from tests.conftest import StartServer

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_log_tail_page_shows_the_log_stream_once(
    start: StartServer, page: Any, console: Console
) -> None:
    server = start("daphne")
    page.goto(server.url + "/logs/")
    # The stream ends after its lines; reconnect=False turns that into the closed state.
    page.wait_for_selector("section[data-sse-state=closed]")
    assert page.text_content("pre.log") == (
        "2025-01-01 INFO Application started\n2025-01-01 DEBUG Connected to database\n"
    )
    assert page.text_content("section .state") == ""  # the label is CSS content
    assert [e["type"] for e in page.evaluate("window.__sse")] == [
        "sse:open",
        "sse:message",
        "sse:message",
        "sse:error",
    ]
    assert console.errors() == []
