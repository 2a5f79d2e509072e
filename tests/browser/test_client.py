"""The browser client in Debian's Chromium against a real Daphne: every promise of the README."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.chromium import Console, npm_file
from tests.conftest import StartServer
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.server, pytest.mark.browser]


@pytest.fixture
def server(start: StartServer) -> ServerProcess:
    return start("daphne")


def client_page(server: ServerProcess, stream: str) -> str:
    return f"{server.url}/test/browser/page/client?stream={quote(stream)}"


def sse_events(page: Any, kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = page.evaluate("window.__sse")
    return [event for event in events if event["type"] == kind]


def test_open_state_dom_events_and_declarative_swaps(
    server: ServerProcess, page: Any, console: Console
) -> None:
    page.goto(client_page(server, "/test/browser/scripted?script=client"))
    page.wait_for_selector("#root[data-sse-state=open]")
    page.wait_for_function("document.getElementById('log').textContent.includes('plain line')")

    # sse:<event> carries parsed JSON (and the raw text), dispatched on the root element.
    greeting = sse_events(page, "sse:greeting")
    assert [e["detail"]["data"] for e in greeting] == [{"hello": "world"}]
    assert greeting[0]["detail"]["raw"] == '{"hello":"world"}'
    assert greeting[0]["detail"]["lastEventId"] == "1"
    assert sse_events(page, "sse:open")[0]["state"] == "open"

    # raw_data fragments are swapped in as HTML; unnamed events appended as text.
    assert page.inner_html("#swap") == '<p class="fragment">swapped <em>in</em></p>'
    assert page.text_content("#log") == "plain line <not html>\n"
    # JSON data swapped into a fragment target is text, whatever it contains.
    assert page.text_content("#json-swap") == "<img src=x onerror='window.__xss=1'>"
    assert page.locator("#json-swap img").count() == 0
    assert page.evaluate("window.__xss") is None

    # Keyed list: the server-rendered item 1 replaced, 2 inserted then replaced, 3 removed.
    items = page.eval_on_selector_all(
        "#list > li", "els => els.map(e => [e.dataset.sseKey, e.textContent])"
    )
    assert items == [["1", "Plumbus 32.99"], ["2", "Portal Gun 1000.00"]]
    # JSON field values are text, never markup.
    assert page.locator("#list b").count() == 2

    # The last event id is kept for this tab, to resume after a reload.
    stored = page.evaluate("Object.entries(sessionStorage)")
    kept = [json.loads(value) for key, value in stored if key.startswith("django-sse:")]
    assert [entry["id"] for entry in kept] == ["7"]
    assert console.errors() == []


def test_backoff_after_http_errors_until_the_stream_opens(
    server: ServerProcess, page: Any, console: Console, markers: Any
) -> None:
    page.goto(client_page(server, "/test/browser/flaky?key=flaky&fail=3"))
    page.wait_for_selector("#root[data-sse-state=open]")
    greeting = sse_events(page, "sse:greeting")
    assert [e["detail"]["data"] for e in greeting] == [{"attempt": 4}]
    # Each 503 made the browser give up; the client reported it and tried again itself.
    errors = sse_events(page, "sse:error")
    assert len(errors) == 3
    assert all(e["detail"]["willRetry"] and e["state"] == "closed" for e in errors)
    assert (markers / "flaky.log").read_text().splitlines() == ["attempt"] * 4
    # Chromium logs each failed request; nothing else may be on the console.
    assert [e for e in console.errors() if "503" not in e] == []


def test_browser_reconnect_honours_retry_and_resumes_with_last_event_id(
    server: ServerProcess, page: Any, console: Console, markers: Any
) -> None:
    # Each connection sends two events and ends; the browser reconnects after `retry`.
    page.goto(client_page(server, "/test/browser/counter?key=ends&end=2&retry=100&gap=0"))
    page.wait_for_function("document.getElementById('log').textContent.includes('event 6')")
    lines = page.text_content("#log").splitlines()
    assert lines[:6] == [f"event {n}" for n in range(1, 7)]
    requests = (markers / "ends.log").read_text().splitlines()
    assert requests[:3] == ["header= query=", "header=2 query=", "header=4 query="]
    assert [e for e in console.errors() if "ERR_" not in e] == []


def test_reload_resumes_from_the_kept_id_and_misses_nothing(
    server: ServerProcess, page: Any, console: Console, markers: Any
) -> None:
    url = client_page(server, "/test/browser/counter?key=reload&gap=0.1")
    page.goto(url)
    page.wait_for_function("document.getElementById('log').textContent.includes('event 3')")
    page.reload()
    page.wait_for_selector("#root[data-sse-state=open]")
    page.wait_for_function("document.getElementById('log').textContent.split('\\n').length > 3")
    first_after_reload = int(page.text_content("#log").splitlines()[0].split()[1])
    requests = (markers / "reload.log").read_text().splitlines()
    assert len(requests) == 2
    assert requests[0] == "header= query="
    # The new page asked for everything after the last event the old page received ...
    resumed_from = int(requests[1].removeprefix("header= query="))
    assert resumed_from >= 3
    # ... and got exactly the next one: no gap, no duplicate.
    assert first_after_reload == resumed_from + 1
    assert console.errors() == []


@pytest.mark.parametrize("give_nonce", [True, False], ids=["nonce", "no-nonce-control"])
def test_strict_csp_with_the_requests_nonce(
    server: ServerProcess, page: Any, console: Console, give_nonce: bool
) -> None:
    stream = quote("/test/browser/scripted?script=client")
    page.goto(f"{server.url}/test/browser/csp?csp=r4nd0m&give={int(give_nonce)}&stream={stream}")
    if give_nonce:
        page.wait_for_selector("#root[data-sse-state=open]")
        page.wait_for_function("document.getElementById('log').textContent.length > 0")
        assert console.errors() == []
    else:
        # Control: without the nonce the policy blocks the client, so the test can fail.
        # goto() returned after "load": deferred scripts have run or been refused by then.
        assert page.evaluate("typeof window.DjangoSSE") == "undefined"
        assert page.get_attribute("#root", "data-sse-state") is None
        assert any("Content Security Policy" in e for e in console.errors())


def test_htmx_sse_extension_consumes_a_django_sse_stream(
    server: ServerProcess, page: Any, console: Console
) -> None:
    htmx = npm_file("htmx.org@2", "dist/htmx.min.js")
    extension = npm_file("htmx-ext-sse@2", "dist/sse.js")
    page.route("**/vendor/htmx.min.js", lambda route: route.fulfill(path=str(htmx)))
    page.route("**/vendor/htmx-ext-sse.js", lambda route: route.fulfill(path=str(extension)))
    page.goto(
        f"{server.url}/test/browser/page/htmx?stream=" + quote("/test/browser/scripted?script=htmx")
    )
    page.wait_for_selector("#fragment #swapped")
    assert page.text_content("#fragment #swapped em") == "django_sse"
    page.wait_for_function("document.querySelectorAll('#items li').length === 2")
    assert page.eval_on_selector_all("#items li", "els => els.map(e => e.textContent)") == [
        "Plumbus",
        "Portal Gun",
    ]
    assert console.errors() == []


def named_page(server: ServerProcess, name: str, stream: str, second: str) -> str:
    return f"{server.url}/test/browser/page/{name}?stream={quote(stream)}&second={quote(second)}"


def test_back_forward_restore_reconnects_live_streams_but_not_finished_ones(
    server: ServerProcess, page: Any, console: Console, markers: Any
) -> None:
    # A live stream, and a finite one (reconnect=False) that sends two events and ends.
    page.goto(
        named_page(
            server,
            "live-and-finite",
            "/test/browser/counter?key=live&gap=0.1",
            "/test/browser/counter?key=finite&end=2&gap=0&retry=100",
        )
    )
    page.wait_for_selector("#root[data-sse-state=open]")
    page.wait_for_function("document.getElementById('finite-log').textContent.includes('2')")
    page.wait_for_selector("#finite[data-sse-state=closed]")
    page.wait_for_function("document.getElementById('log').textContent.includes('event 2')")

    # A back/forward cache round trip as the client sees it: pagehide then pageshow with
    # persisted=true, dispatched on window (synthetic events, no real navigation).
    received = page.evaluate(
        """() => {
          window.dispatchEvent(new PageTransitionEvent("pagehide", {persisted: true}));
          return document.getElementById("log").textContent.trim().split("\\n").length;
        }"""
    )
    assert page.get_attribute("#root", "data-sse-state") == "closed"
    assert page.get_attribute("#finite", "data-sse-state") == "closed"
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")

    # The live stream came back and resumed after the last event it had: nothing missed, no
    # duplicate ...
    page.wait_for_selector("#root[data-sse-state=open]")
    page.wait_for_function(
        "n => document.getElementById('log').textContent.trim().split('\\n').length > n",
        arg=received,
    )
    lines = page.text_content("#log").splitlines()
    assert lines == [f"event {n}" for n in range(1, len(lines) + 1)]
    assert (markers / "live.log").read_text().splitlines() == [
        "header= query=",
        f"header= query={received}",
    ]
    # ... the finished one stayed closed: no new request, however long we wait.
    page.wait_for_timeout(1000)
    assert page.get_attribute("#finite", "data-sse-state") == "closed"
    assert (markers / "finite.log").read_text().splitlines() == ["header= query="]
    assert page.text_content("#finite-log") == "event 1\nevent 2\n"
    assert [e for e in console.errors() if "ERR_" not in e] == []


def test_a_second_tag_in_the_same_element_is_refused_with_a_console_error(
    server: ServerProcess, page: Any, console: Console
) -> None:
    page.goto(
        named_page(
            server,
            "two-tags",
            "/test/browser/scripted?script=client",
            "/test/browser/scripted?script=client&copy=2",
        )
    )
    page.wait_for_selector("#root[data-sse-state=open]")
    page.wait_for_function("document.getElementById('log').textContent.includes('plain line')")
    # No second stream was opened (so none can deliver copies later): the client holds one
    # EventSource, for the first tag.
    assert page.evaluate("window.DjangoSSE.state().connections") == [
        server.url + "/test/browser/scripted?script=client"
    ]

    # The first stream works and applies each event exactly once.
    assert page.text_content("#log") == "plain line <not html>\n"
    assert [e["detail"]["data"] for e in sse_events(page, "sse:greeting")] == [{"hello": "world"}]
    assert len(sse_events(page, "sse:open")) == 1
    assert page.evaluate("window.DjangoSSE.state().feeds") == [
        server.url + "/test/browser/scripted?script=client"
    ]
    assert page.inner_html("#swap") == '<p class="fragment">swapped <em>in</em></p>'
    items = page.eval_on_selector_all(
        "#list > li", "els => els.map(e => [e.dataset.sseKey, e.textContent])"
    )
    assert items == [["1", "Plumbus 32.99"], ["2", "Portal Gun 1000.00"]]

    # The second tag was not started, and the console says why and what to do.
    errors = console.errors()
    assert len(errors) == 1
    assert "/test/browser/scripted?script=client&copy=2 is not started" in errors[0]
    assert "Wrap each {% sse_stream %} tag in an element of its own" in errors[0]
