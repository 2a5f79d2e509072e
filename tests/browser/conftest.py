from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.chromium import Console, launch_chromium


# Module scope, not session: while Playwright's sync API is running, asyncio believes a loop
# runs in this thread, and the async tests of other modules could not start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    # A fresh context per test: its own sessionStorage, cache and cookies.
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(context: Any, console: Console) -> Any:
    page = context.new_page()
    page.on("console", lambda message: console.messages.append((message.type, message.text)))
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    # Record the client's DOM events from before any page script runs.
    page.add_init_script(
        """
        window.__sse = [];
        for (const name of ["sse:open", "sse:error", "sse:greeting", "sse:message",
                            "sse:created", "sse:updated", "sse:deleted", "sse:reset"]) {
          document.addEventListener(name, (e) => window.__sse.push({type: e.type, detail: e.detail,
            state: e.target.getAttribute("data-sse-state")}));
        }
        """
    )
    return page
