"""The demo's live page ``/`` in Chromium against real Daphne processes sharing Redis.

Changes are made the way a developer would: ``manage.py shell`` in a process of its own. Redis
carries them to the server (channel layer) and keeps the replay log, which is what lets a page
catch up across a server restart.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.browser.chromium import ARTIFACTS, Console
from tests.conftest import StartServer
from tests.support.servers import manage

pytestmark = [pytest.mark.server, pytest.mark.browser]

ITEMS = "#items > li"


@pytest.fixture
def live_env(redis_url: str, server_database: str) -> dict[str, str]:
    # A key prefix of its own: other tests (and earlier runs) share the Redis server.
    return {
        "REDIS_URL": redis_url,
        "DATABASE_URL": server_database,
        "DJANGO_SSE_KEY_PREFIX": "browser" + uuid.uuid4().hex[:12],
    }


def shell(env: dict[str, str], code: str) -> str:
    """Run ``code`` in ``manage.py shell``; return the last line it printed."""
    output = manage("shell", "-c", "from demo_project.items.models import Item\n" + code, env=env)
    # Django >= 5.2's shell may first announce its automatic imports.
    return (output.strip().splitlines() or [""])[-1]


def items(page: Any) -> list[tuple[str, str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        ITEMS, "els => els.map(e => [e.dataset.sseKey, e.innerText.replace(/\\s+/g, ' ')])"
    )
    return [(key, text) for key, text in rows]


def wait_for_item(page: Any, text: str) -> None:
    page.wait_for_function(
        "text => [...document.querySelectorAll('#items > li')]"
        ".some(li => li.textContent.includes(text))",
        arg=text,
    )


def test_live_page(
    start: StartServer, live_env: dict[str, str], page: Any, console: Console
) -> None:
    shell(live_env, "Item.objects.all().delete()")
    server = start("daphne", env=live_env)
    port = int(server.url.rsplit(":", 1)[1])

    page.goto(server.url + "/")
    page.wait_for_selector("#live[data-sse-state=open]")
    assert items(page) == []

    # Saved in a shell: appears. Edited: replaced in place. Deleted: removed.
    key = shell(live_env, "print(Item.objects.create(name='Plumbus', price='32.99').pk)").strip()
    wait_for_item(page, "Plumbus")
    assert items(page) == [(key, "Plumbus 32.99")]
    shell(live_env, f"i = Item.objects.get(pk={key}); i.name = 'Plumbus XL'; i.save()")
    wait_for_item(page, "Plumbus XL")
    assert items(page) == [(key, "Plumbus XL 32.99")]
    shell(live_env, f"Item.objects.get(pk={key}).delete()")
    page.wait_for_function("document.querySelectorAll('#items > li').length === 0")

    # The form on the page saves through a normal POST; the item comes back through the stream.
    page.fill("input[name=name]", "Portal Gun")
    page.fill("input[name=price]", "999.99")
    page.click("button[type=submit]")
    page.wait_for_selector("#live[data-sse-state=open]")
    wait_for_item(page, "Portal Gun")
    assert console.errors() == []

    # Server restart: the page notices, items saved while the server is down are replayed
    # from Redis once it is back on the same port.
    server.stop()
    page.wait_for_selector("#live:not([data-sse-state=open])")
    shell(live_env, "Item.objects.create(name='Saved while down', price='1.50')")
    restarted = start("daphne", env=live_env, port=port)
    page.wait_for_selector("#live[data-sse-state=open]")
    wait_for_item(page, "Saved while down")
    # Chromium logs the stream cut by the stopping server and its refused reconnects while the
    # server was gone: network messages, expected here. Nothing else, and no script error.
    expected = ("net::ERR_INCOMPLETE_CHUNKED_ENCODING", "net::ERR_CONNECTION_REFUSED")
    print("console errors during the restart:", console.errors())
    assert [e for e in console.errors() if not e.endswith(expected)] == []
    assert console.page_errors == []
    errors_before_reload = len(console.errors())

    # Reload: the stream request is held back until more changes are saved, so they happen
    # after the page was rendered and before it listens. Resuming from the kept id gets them.
    held: list[Any] = []
    page.route("**/items/live*", lambda route: held.append(route))
    page.reload()
    page.wait_for_function("document.readyState === 'complete'")
    for _ in range(200):  # the client connects right after the page loads
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page did not open its stream"
    shell(live_env, "Item.objects.create(name='Meeseeks Box', price='19.99')")
    shell(live_env, "Item.objects.filter(name='Portal Gun').get().delete()")
    assert "lastEventId=" in held[0].request.url
    for route in held:
        route.continue_()
    page.unroute("**/items/live*")
    wait_for_item(page, "Meeseeks Box")
    page.wait_for_function(
        "![...document.querySelectorAll('#items > li')]"
        ".some(li => li.textContent.includes('Portal'))"
    )
    names = [text.rsplit(" ", 1)[0] for _, text in items(page)]
    assert names == ["Saved while down", "Meeseeks Box"]
    assert len(console.errors()) == errors_before_reload

    # The README's picture.
    shell(live_env, "Item.objects.create(name='Plumbus', price='32.99')")
    wait_for_item(page, "Plumbus")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live-page.png"
    page.set_viewport_size({"width": 1000, "height": 420})
    page.screenshot(path=str(shot), animations="disabled")
    assert shot.stat().st_size > 0
    restarted.stop()


def test_reset_past_the_replay_window_reloads_the_page_once(
    start: StartServer, server_database: str, page: Any, console: Console
) -> None:
    # The in-memory replay log of a fresh process knows no id of an earlier one.
    server = start("daphne", env={"DATABASE_URL": server_database})
    loads: list[str] = []
    streams: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.on("request", lambda r: streams.append(r.url) if "/items/live" in r.url else None)
    page.goto(server.url + "/")
    page.wait_for_selector("#live[data-sse-state=open]")
    # The client keeps the id per stream URL; plant one from an older process.
    key = "django-sse:last-event-id:" + server.url + "/items/live"
    page.evaluate("([k, v]) => sessionStorage.setItem(k, v)", [key, "1-1"])

    page.reload()
    # The server answers the stale id with a reset event: the client forgets the id and loads
    # the page again, and that load connects without it and stays.
    for _ in range(200):
        if len(loads) >= 3:
            break
        page.wait_for_timeout(50)
    page.wait_for_selector("#live[data-sse-state=open]")
    assert loads == [server.url + "/"] * 3
    # Without a kept id, the page resumes from the id it was rendered at (latest_event_id).
    rendered = streams[0]
    assert rendered.startswith(server.url + "/items/live?lastEventId=")
    assert streams == [rendered, server.url + "/items/live?lastEventId=1-1", rendered]
    assert page.evaluate("(k) => sessionStorage.getItem(k)", key) is None
    assert console.errors() == []


def viewing(page: Any) -> str:
    text: str = page.eval_on_selector(".viewing", "el => el.innerText")
    return text


def wait_for_viewing(page: Any, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelector('.viewing').innerText === n + ' viewing'", arg=count
    )


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_the_viewing_badge_counts_the_open_pages(
    start: StartServer, server_database: str, redis_url: str, browser: Any, backend: str
) -> None:
    # Redis: one page on each of two servers, so each badge counts the other server's page too.
    if backend == "redis":
        env = {
            "REDIS_URL": redis_url,
            "DJANGO_SSE_KEY_PREFIX": "viewing" + uuid.uuid4().hex[:12],
            "DJANGO_SSE_PRESENCE": "1",
        }
        first, second = start("daphne", env=env), start("daphne", env=env)
    else:
        first = second = start("daphne", env={"DJANGO_SSE_PRESENCE": "1"})
    # Two browser contexts: two visitors, each with a stream of their own.
    one, other = browser.new_context(), browser.new_context()
    try:
        page = one.new_page()
        page.goto(first.url + "/")
        page.wait_for_selector("#live[data-sse-state=open]")
        wait_for_viewing(page, 1)
        assert page.is_visible(".viewing")

        second_page = other.new_page()
        second_page.goto(second.url + "/")
        wait_for_viewing(second_page, 2)
        wait_for_viewing(page, 2)

        # The second visitor leaves: the first page's badge goes back to one.
        other.close()
        wait_for_viewing(page, 1)
        assert viewing(page) == "1 viewing"
    finally:
        one.close()
        other.close()
