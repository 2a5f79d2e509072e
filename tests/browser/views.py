"""Pages and streams for the browser tests of the client, with known content and failures."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.template import engines

from django_sse import EventSourceResponse, ServerSentEvent, get_last_event_id

# The element holding the tag is the stream's root; everything the tests look at is inside.
CLIENT_PAGE = """{% load sse %}<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>client</title></head>
<body>
<main id="root">
  {% sse_stream stream events="greeting" backoff=200 max_backoff=1000 %}
  <div id="swap" data-sse-swap="fragment"></div>
  <div id="json-swap" data-sse-swap="notice"></div>
  <ul id="list" data-sse-list>
    <template><li><b data-sse-field="name"></b> <i data-sse-field="price"></i></li></template>
    <li data-sse-key="1"><b>rendered by the server</b></li>
  </ul>
  <pre id="log" data-sse-swap="message" data-sse-swap-mode="append-text"></pre>
</main>
</body></html>"""

HTMX_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>htmx</title>
<script src="/vendor/htmx.min.js"></script><script src="/vendor/htmx-ext-sse.js"></script>
</head><body>
<div hx-ext="sse" sse-connect="{{ stream }}">
  <div id="fragment" sse-swap="fragment">waiting</div>
  <ul id="items" sse-swap="created" hx-swap="beforeend"></ul>
</div>
</body></html>"""

# Two tags in one element: the second must not start (one root, one stream).
TWO_TAGS_PAGE = """{% load sse %}<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>two tags</title></head>
<body>
<main id="root">
  {% sse_stream stream events="greeting" %}
  {% sse_stream second events="greeting" %}
  <div id="swap" data-sse-swap="fragment"></div>
  <ul id="list" data-sse-list>
    <template><li><b data-sse-field="name"></b> <i data-sse-field="price"></i></li></template>
  </ul>
  <pre id="log" data-sse-swap="message" data-sse-swap-mode="append-text"></pre>
</main>
</body></html>"""

# A live stream next to a finite one (reconnect=False), each in an element of its own.
LIVE_AND_FINITE_PAGE = """{% load sse %}<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>finite</title></head>
<body>
<main id="root">
  {% sse_stream stream backoff=200 max_backoff=1000 %}
  <pre id="log" data-sse-swap="message" data-sse-swap-mode="append-text"></pre>
</main>
<section id="finite">
  {% sse_stream second reconnect=False %}
  <pre id="finite-log" data-sse-swap="message" data-sse-swap-mode="append-text"></pre>
</section>
</body></html>"""

# Three feeds, each in an element of its own, and one more that opts out of sharing. The
# roots hold no declarative target unless asked (swap=1): a reset then reloads no page, so the
# tests can watch every feed's events (recorded by the tests' init script) across it.
FEEDS_PAGE = """{% load sse %}<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>feeds</title></head>
<body>
{% for id, url in feeds %}<section id="{{ id }}">
  {% sse_stream url backoff=200 max_backoff=1000 %}
  {% if swap %}<pre data-sse-swap="message" data-sse-swap-mode="append-text"></pre>{% endif %}
</section>
{% endfor %}{% if solo %}<section id="solo">{% sse_stream solo share=False %}</section>{% endif %}
</body></html>"""

PAGES = {
    "client": CLIENT_PAGE,
    "htmx": HTMX_PAGE,
    "two-tags": TWO_TAGS_PAGE,
    "live-and-finite": LIVE_AND_FINITE_PAGE,
    "feeds": FEEDS_PAGE,
}

SCRIPTS: dict[str, list[ServerSentEvent]] = {
    "client": [
        ServerSentEvent(data={"hello": "world"}, event="greeting", id="1"),
        ServerSentEvent(raw_data="<p class='fragment'>swapped <em>in</em></p>", event="fragment"),
        ServerSentEvent(data={"id": 1, "name": "Plumbus", "price": "32.99"}, event="updated"),
        ServerSentEvent(data={"id": 2, "name": "<b>Gun</b>", "price": "9.99"}, event="created"),
        ServerSentEvent(data={"id": 3, "name": "Meeseeks Box", "price": "19.99"}, event="created"),
        ServerSentEvent(data={"id": 2, "name": "Portal Gun", "price": "1000.00"}, event="updated"),
        ServerSentEvent(data={"id": 3}, event="deleted"),
        ServerSentEvent(data="<img src=x onerror='window.__xss=1'>", event="notice"),
        ServerSentEvent(raw_data="plain line <not html>", id="7"),
    ],
    "htmx": [
        ServerSentEvent(raw_data='<p id="swapped">from <em>django_sse</em></p>', event="fragment"),
        ServerSentEvent(raw_data="<li>Plumbus</li>", event="created", id="1"),
        ServerSentEvent(raw_data="<li>Portal Gun</li>", event="created", id="2"),
    ],
}


def _markers() -> Path:
    return Path(os.environ["DJANGO_SSE_TEST_MARKERS"])


def _record(key: str, line: str) -> int:
    """Append a line to the test's marker file ``key``; return how many lines it now has."""
    if not key.isalnum():
        raise ValueError(key)
    path = _markers() / f"{key}.log"
    with path.open("a") as log:
        log.write(line + "\n")
    return len(path.read_text().splitlines())


def page(request: HttpRequest, name: str) -> HttpResponse:
    html = (
        engines["django"]
        .from_string(PAGES[name])
        .render(
            {
                "stream": request.GET.get("stream", ""),
                "second": request.GET.get("second", ""),
                # feeds: ?feed=<id>:<url>, in document order
                "feeds": [f.split(":", 1) for f in request.GET.getlist("feed")],
                "solo": request.GET.get("solo", ""),
                "swap": request.GET.get("swap") == "1",
            },
            request,
        )
    )
    response = HttpResponse(html)
    nonce = request.GET.get("csp")
    if nonce:
        # What a CSP middleware does: a strict policy in the header, and the nonce on the
        # request for the tag to find (only when asked to, for the negative control).
        response["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'none'; img-src data:"
        )
    return response


def csp_page(request: HttpRequest) -> HttpResponse:
    nonce = request.GET["csp"]
    if request.GET.get("give") == "1":
        request.csp_nonce = nonce  # type: ignore[attr-defined]
    return page(request, "client")


async def _forever() -> None:
    # Keep the stream open until the browser leaves: Django cancels us on disconnect.
    await asyncio.sleep(3600)


async def scripted(request: HttpRequest) -> EventSourceResponse:
    script = SCRIPTS[request.GET["script"]]

    async def events() -> AsyncIterator[ServerSentEvent]:
        for event in script:
            yield event
        await _forever()

    return EventSourceResponse(events())


async def flaky(request: HttpRequest) -> HttpResponse:
    """Fail with 503 (the browser gives up on EventSource) ``fail`` times, then stream."""
    attempt = _record(request.GET["key"], "attempt")
    if attempt <= int(request.GET.get("fail", "2")):
        return HttpResponse("try again later", status=503)

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data={"attempt": attempt}, event="greeting")
        await _forever()

    return EventSourceResponse(events())


async def counter(request: HttpRequest) -> EventSourceResponse:
    """Events 1, 2, 3 ... ``gap`` seconds apart, resuming after the client's last event id.

    With ``end`` the stream ends after that many events, so the browser reconnects by itself
    (after ``retry`` ms) with the Last-Event-ID header. Every request is recorded.
    """
    header = request.headers.get("Last-Event-ID", "")
    query = request.GET.get("lastEventId", "")
    _record(request.GET["key"], f"header={header} query={query}")
    last = get_last_event_id(request)
    start = int(last) + 1 if last is not None and last.isdecimal() else 1
    gap = float(request.GET.get("gap", "0.2"))
    end = int(request.GET.get("end", "0"))
    retry = int(request.GET.get("retry", "500"))

    async def events() -> AsyncIterator[ServerSentEvent]:
        n = start
        sent = 0
        while not end or sent < end:
            yield ServerSentEvent(raw_data=f"event {n}", id=str(n), retry=retry)
            n += 1
            sent += 1
            await asyncio.sleep(gap)

    return EventSourceResponse(events())
