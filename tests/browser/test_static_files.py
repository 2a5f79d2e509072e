"""When the browser client cannot be loaded, the page's console says why.

Daphne and uvicorn serve no static files, and a URLconf without ``staticfiles_urlpatterns()``
does not either, so ``sse.js`` is a 404 page. The browser logs the 404 and a refused MIME type,
which say nothing about the tag; django_sse's message (with ``DEBUG`` on) does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.chromium import Console
from tests.conftest import StartServer

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_a_client_that_does_not_load_says_static_files_are_not_served(
    start: StartServer, page: Any, console: Console
) -> None:
    unserved = {
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "tests.support.settings_static_unserved",
    }
    server = start("daphne", env=unserved)
    with page.expect_console_message(lambda message: "django_sse:" in message.text) as logged:
        page.goto(server.url + "/")
    message = logged.value
    assert message.type == "error"
    assert message.text.startswith(f"django_sse: {server.url}/static/django_sse/sse.js did not")
    assert "static files" in message.text and "staticfiles_urlpatterns()" in message.text
    # Nothing on the page is live: the tag's element never got a state.
    assert page.get_attribute("#live", "data-sse-state") is None
    # With DEBUG off nothing is said (the system check django_sse.W006 covers production).
    quiet = start("daphne", env={**unserved, "DJANGO_DEBUG": "0"})
    page.goto(quiet.url + "/")
    assert page.evaluate("document.querySelectorAll('script:not([src]):not([type])').length") == 0


def test_a_client_that_loads_says_nothing(start: StartServer, page: Any, console: Console) -> None:
    server = start("daphne", env={"DJANGO_DEBUG": "1"})
    page.goto(server.url + "/")
    page.wait_for_selector("#live[data-sse-state=open]")
    assert [text for text in console.errors() if "django_sse:" in text] == []
