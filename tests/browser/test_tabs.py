"""Several feeds on one connection, one for every tab (docs/topics/feeds-and-tabs.md).

Chromium (one browser context: one origin's cookies, BroadcastChannel and Web Locks) against a
real Daphne over HTTP/1.1, serving the combined feeds of ``SubscriptionView``. The server counts
its open event streams itself (tests/browser/asgi.py), so "one connection" is asserted from the
server's side, not from what the page believes. Events are published by a test-only view inside
the server; each carries a sequence number, and every tab records what each of its feeds
received (in sessionStorage, so a record survives a reload), which is how "every event exactly
once" is checked.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, Console, npm_file
from tests.conftest import StartServer
from tests.support.servers import ServerProcess, manage
from tests.support.waiting import until

pytestmark = [pytest.mark.server, pytest.mark.browser]

APP = "tests.browser.asgi:application"
PARTS = "abc"

# Every sse:* event (and pageshow) of every tab, kept in the tab's sessionStorage.
RECORDER = """
(() => {
  const log = JSON.parse(sessionStorage.getItem("__log") || "[]");
  window.__log = log;
  const save = () => sessionStorage.setItem("__log", JSON.stringify(log));
  for (const name of ["sse:open", "sse:message", "sse:reset", "sse:error"]) {
    document.addEventListener(name, (e) => {
      const d = e.detail || {};
      const seq = d.data && typeof d.data === "object" ? d.data.seq : undefined;
      log.push({type: e.type, root: e.target.id, seq: seq, id: d.lastEventId || ""});
      save();
    });
  }
  window.addEventListener("pageshow", (e) => {
    log.push({type: "pageshow", persisted: e.persisted});
    save();
  });
})();
"""

# No Web Locks: the client falls back to one connection per tab.
WITHOUT_LOCKS = "Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined});"

_names = itertools.count()


@pytest.fixture
def name() -> str:
    # Groups of their own per test: the server's replay log outlives nothing, Redis does.
    return f"t{next(_names)}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def server(start: StartServer) -> ServerProcess:
    return start("daphne", app=APP)


def feed_url(name: str, part: str) -> str:
    return f"/test/feeds/one/{name}/{part}"


def feeds_page(
    server: ServerProcess, name: str, parts: str = PARTS, solo: str = "", swap: bool = False
) -> str:
    query = [f"feed={part}:{quote(feed_url(name, part), safe='')}" for part in parts]
    if solo:
        query.append("solo=" + quote(feed_url(name, solo), safe=""))
    if swap:
        query.append("swap=1")
    return f"{server.url}/test/browser/page/feeds?" + "&".join(query)


def streams(server: ServerProcess) -> dict[str, Any]:
    """What the server counts: open event streams, and when each one started."""
    result: dict[str, Any] = httpx.get(server.url + "/test/browser/streams", timeout=60).json()
    return result


def publish(server: ServerProcess, name: str, part: str, seq: int) -> None:
    response = httpx.get(
        server.url + "/test/rel/publish",
        params={"group": f"fd.{name}.{part}", "seq": seq},
        timeout=60,
    )
    response.raise_for_status()


def received(page: Any, root: str) -> list[int]:
    """The sequence numbers root's feed received, in order, across reloads."""
    log: list[dict[str, Any]] = page.evaluate("JSON.parse(sessionStorage.getItem('__log') || '[]')")
    return [e["seq"] for e in log if e["type"] == "sse:message" and e["root"] == root]


def recorded(page: Any, kind: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = page.evaluate("JSON.parse(sessionStorage.getItem('__log') || '[]')")
    return [e for e in log if e["type"] == kind]


def new_tab(context: Any, console: Console, url: str, init: str = "") -> Any:
    page = context.new_page()
    page.on("console", lambda m: console.messages.append((m.type, m.text)))
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    page.add_init_script(init + RECORDER)
    page.goto(url)
    return page


def wait_live(page: Any, roots: str = PARTS) -> None:
    for root in roots:
        page.wait_for_selector(f"#{root}[data-sse-state=open]", state="attached")


def open_live_tabs(
    context: Any, console: Console, url: str, count: int, tabs: list[Any], init: str = ""
) -> None:
    """Open ``count`` tabs of ``url`` into ``tabs`` and wait until each one's feeds are open."""
    for _ in range(count):
        tabs.append(new_tab(context, console, url, init=init))
    for tab in tabs:
        wait_live(tab)


def leader_of(tabs: list[Any]) -> Any:
    def find() -> Any:
        leaders = [tab for tab in tabs if tab.evaluate("DjangoSSE.state().leading")]
        return leaders[0] if len(leaders) == 1 else None

    return until(find)


class Publisher:
    """Publishes seq 0, 1, 2, ... round-robin to the parts' groups, ``rate`` per second."""

    def __init__(self, server: ServerProcess, name: str, count: int, rate: float = 10) -> None:
        self.server, self.name, self.count, self.rate = server, name, count, rate
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        for seq in range(self.count):
            # Paced on the clock, not by sleeping a fixed gap after each (slow) request.
            delay = started + seq / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            publish(self.server, self.name, PARTS[seq % len(PARTS)], seq)
            self.sent = seq + 1

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(120)

    def expected(self, part: str) -> list[int]:
        return [seq for seq in range(self.count) if PARTS[seq % len(PARTS)] == part]


# The seq of the marker published to a feed after its last event: a tab that has every marker
# has everything published before them (one connection, one relay channel: both in order), so
# what it holds then is final, and a late duplicate or a misrouted event is already in it.
SENTINEL = 1_000_000


def publish_sentinels(server: ServerProcess, name: str, parts: str = PARTS) -> None:
    for part in parts:
        publish(server, name, part, SENTINEL)


def settled(page: Any, roots: str = PARTS) -> list[list[int]]:
    """Each root's events before its sentinel, once every root has its sentinel (and only one,
    last: anything after it fails here)."""

    def done() -> bool:
        return all(SENTINEL in received(page, root) for root in roots)

    until(done, within=60)
    result = []
    for root in roots:
        got = received(page, root)
        assert got[-1:] == [SENTINEL] and got.count(SENTINEL) == 1, (root, got)
        result.append(got[:-1])
    return result


@pytest.fixture
def tabs(context: Any) -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for tab in opened:
        if not tab.is_closed():
            tab.close()


def test_a_page_of_three_feeds_opens_one_stream_and_routes_each_feed(
    server: ServerProcess, context: Any, console: Console, name: str
) -> None:
    page = new_tab(context, console, feeds_page(server, name, solo="s"))
    wait_live(page, PARTS)
    page.wait_for_selector("#solo[data-sse-state=open]", state="attached")

    # One stream for the three shared feeds, one for the feed with share=False; no other
    # was ever opened (no reconnect while the page assembled its feeds).
    until(lambda: streams(server)["open"] == 2)
    assert len(streams(server)["opened"]) == 2
    urls = sorted(page.evaluate("DjangoSSE.state().connections"))
    shared = (
        f"{server.url}{feed_url(name, 'a')}?feed={quote(feed_url(name, 'b'), safe='')}"
        f"&feed={quote(feed_url(name, 'c'), safe='')}"
    )
    assert urls == sorted([shared, server.url + feed_url(name, "s")])

    # Each element receives its own feed's events, and only those.
    for seq, part in enumerate("abcs"):
        publish(server, name, part, seq)
    publish_sentinels(server, name, "abcs")
    assert settled(page, PARTS) == [[0], [1], [2]]
    assert settled(page, ["solo"]) == [[3]]
    assert console.errors() == []


def test_twelve_tabs_of_three_feeds_hold_one_stream_and_each_change_reaches_every_tab_once(
    server: ServerProcess, context: Any, console: Console, name: str, tabs: list[Any]
) -> None:
    url = feeds_page(server, name)
    open_live_tabs(context, console, url, 12, tabs)

    # The server, not the page, says how many connections the twelve tabs hold.
    until(lambda: streams(server)["open"] == 1)
    counted = streams(server)
    print(f"12 tabs x 3 feeds: {counted['open']} open stream(s), {len(counted['opened'])} opened")
    assert counted["open"] == 1
    assert len(counted["opened"]) == 1
    assert sum(tab.evaluate("DjangoSSE.state().leading") for tab in tabs) == 1

    for seq, part in enumerate(PARTS):
        publish(server, name, part, seq)
    publish_sentinels(server, name)
    for tab in tabs:
        assert settled(tab) == [[0], [1], [2]]
    assert streams(server)["open"] == 1
    assert console.errors() == []


@pytest.mark.parametrize("how", ["close", "freeze"])
def test_the_leader_tab_closing_or_freezing_loses_no_event_in_the_other_tabs(
    server: ServerProcess,
    context: Any,
    console: Console,
    name: str,
    tabs: list[Any],
    how: str,
) -> None:
    url = feeds_page(server, name)
    open_live_tabs(context, console, url, 6, tabs)
    until(lambda: streams(server)["open"] == 1)
    leader = leader_of(tabs)
    others = [tab for tab in tabs if tab is not leader]

    with Publisher(server, name, count=60, rate=10) as publisher:
        until(lambda: publisher.sent >= 15)
        before = len(streams(server)["opened"])
        gone_at = time.monotonic()
        if how == "close":
            leader.close(run_before_unload=False)
        else:
            # Page Lifecycle's freeze, as Chrome sends it to a background tab before freezing
            # it. Dispatched by hand: headless Chromium ignores Page.setWebLifecycleState for
            # a page it shows (measured: no freeze event, timers kept running).
            leader.evaluate("document.dispatchEvent(new Event('freeze'))")
        opened = until(lambda: streams(server)["opened"][before:])
        takeover = opened[0] - gone_at
        print(f"takeover ({how}): new stream {takeover:.3f} s after the leader went")
    publish_sentinels(server, name)
    for tab in others:
        assert settled(tab) == [publisher.expected(part) for part in PARTS]
    until(lambda: streams(server)["open"] == 1)
    new_leader = leader_of(others)
    assert new_leader is not leader
    if how == "freeze":
        leader.evaluate("document.dispatchEvent(new Event('resume'))")
        # Back from the freeze, it follows again (no second connection), and the new leader
        # replays to it what it missed while away: every event once, in order, no reset.
        assert settled(leader) == [publisher.expected(part) for part in PARTS]
        assert recorded(leader, "sse:reset") == []
        assert not leader.evaluate("DjangoSSE.state().leading")
        publish(server, name, "a", 100)
        until(lambda: received(leader, "a")[-1:] == [100])
        assert streams(server)["open"] == 1
    assert [e for e in console.errors() if "ERR_" not in e] == []


def test_a_tab_back_while_another_leads_gets_what_it_missed_replayed(
    server: ServerProcess, context: Any, console: Console, name: str, tabs: list[Any]
) -> None:
    open_live_tabs(context, console, feeds_page(server, name), 4, tabs)
    until(lambda: streams(server)["open"] == 1)
    leader = leader_of(tabs)
    away, *stay = [tab for tab in tabs if tab is not leader]

    with Publisher(server, name, count=60, rate=10) as publisher:
        until(lambda: publisher.sent >= 10)
        away.evaluate("document.dispatchEvent(new Event('freeze'))")
        until(lambda: publisher.sent >= 20)
        # While it is away the leader goes too: another tab takes over, from its own id.
        before = len(streams(server)["opened"])
        leader.close(run_before_unload=False)
        until(lambda: streams(server)["opened"][before:])
        until(lambda: publisher.sent >= 30)
        # Back in the middle of the stream, behind a leader that never relayed to it.
        away.evaluate("document.dispatchEvent(new Event('resume'))")
    publish_sentinels(server, name)
    for tab in [away, *stay]:
        assert settled(tab) == [publisher.expected(part) for part in PARTS]
    assert recorded(away, "sse:reset") == []
    assert not away.evaluate("DjangoSSE.state().leading")
    until(lambda: streams(server)["open"] == 1)
    assert [e for e in console.errors() if "ERR_" not in e] == []


def test_a_tab_with_another_feed_widens_the_shared_stream_and_inherits_it_alone(
    server: ServerProcess, context: Any, console: Console, name: str, tabs: list[Any]
) -> None:
    tabs.append(new_tab(context, console, feeds_page(server, name, parts="ab")))
    wait_live(tabs[0], "ab")
    with Publisher(server, name, count=50, rate=10) as publisher:
        until(lambda: publisher.sent >= 10)
        # A tab that needs feed c: the leader reconnects for a, b and c, resuming a and b.
        tabs.append(new_tab(context, console, feeds_page(server, name, parts="c")))
        wait_live(tabs[1], "c")
        until(lambda: len(streams(server)["opened"]) == 2)
        until(lambda: publisher.sent >= 25)
        for part in "ab":  # through the reconnect: every event once, in order
            until(lambda part=part: len(received(tabs[0], part)) >= 8)
            got = received(tabs[0], part)
            assert got == publisher.expected(part)[: len(got)]
        # The leader goes: the other tab, alone with c, takes the stream over from the
        # combined id, on c's URL alone (the server reads the cursor of that id).
        tabs[0].close()
        until(lambda: len(streams(server)["opened"]) == 3)
    publish_sentinels(server, name, "c")
    (got,) = settled(tabs[1], "c")
    (connection,) = tabs[1].evaluate("DjangoSSE.state().connections")
    assert connection.startswith(server.url + feed_url(name, "c") + "?lastEventId=")
    assert "feed=" not in connection  # c is not listed (and authorized) a second time
    # Feed c from the moment its tab joined, through the takeover: no gap, no duplicate.
    assert got == publisher.expected("c")[-len(got) :]
    assert len(got) >= len(publisher.expected("c")) - 4  # joined after at most 12 events
    assert streams(server)["open"] == 1
    assert [e for e in console.errors() if "ERR_" not in e] == []


def test_without_web_locks_each_tab_has_its_own_stream_for_all_its_feeds(
    server: ServerProcess, context: Any, console: Console, name: str, tabs: list[Any]
) -> None:
    url = feeds_page(server, name)
    open_live_tabs(context, console, url, 3, tabs, init=WITHOUT_LOCKS)
    until(lambda: streams(server)["open"] == 3)
    assert not any(tab.evaluate("DjangoSSE.state().tabs") for tab in tabs)
    for seq, part in enumerate(PARTS):
        publish(server, name, part, seq)
    publish_sentinels(server, name)
    for tab in tabs:
        assert settled(tab) == [[0], [1], [2]]
    assert console.errors() == []


def test_feeds_swapped_out_by_htmx_stop_and_feeds_swapped_in_start(
    server: ServerProcess, context: Any, console: Console, name: str
) -> None:
    htmx = npm_file("htmx.org@2", "dist/htmx.min.js")
    page = context.new_page()
    page.on("console", lambda m: console.messages.append((m.type, m.text)))
    page.add_init_script(RECORDER)
    page.route("**/vendor/htmx.min.js", lambda route: route.fulfill(path=str(htmx)))
    page.goto(feeds_page(server, name, solo="s"))
    page.add_script_tag(url="/vendor/htmx.min.js")
    wait_live(page)
    page.wait_for_selector("#solo[data-sse-state=open]", state="attached")
    until(lambda: streams(server)["open"] == 2)

    # An htmx swap replaces the share=False feed's element: its connection closes.
    page.evaluate("htmx.swap('#solo', '<p id=\"solo\">gone</p>', {swapStyle: 'outerHTML'})")
    until(lambda: streams(server)["open"] == 1)
    # Another swaps feed c out and a new tag (feed d) in: the shared connection follows.
    fragment = page.evaluate(
        """async (url) => {
          const html = await (await fetch(url)).text();
          const doc = new DOMParser().parseFromString(html, "text/html");
          return doc.getElementById("d").outerHTML;
        }""",
        feeds_page(server, name, parts="d"),
    )
    page.evaluate(
        "(html) => htmx.swap('#c', html, {swapStyle: 'outerHTML'})",
        fragment,
    )
    page.wait_for_selector("#d[data-sse-state=open]", state="attached")
    until(lambda: "%2Fd" in page.evaluate("DjangoSSE.state().connections.join()"))
    connections = page.evaluate("DjangoSSE.state().connections")
    assert len(connections) == 1 and "%2Fc" not in connections[0]
    until(lambda: streams(server)["open"] == 1)
    for seq, part in enumerate("abcds"):
        publish(server, name, part, seq)
    publish_sentinels(server, name, "abd")
    assert settled(page, "abd") == [[0], [1], [3]]
    # The shared connection no longer carries c (its URL, above); solo's was closed.
    assert received(page, "c") == [] and received(page, "solo") == []
    # A swap that takes the page's last feeds away closes the shared connection too.
    page.evaluate("htmx.swap('body', '<p>no feeds</p>', {swapStyle: 'innerHTML'})")
    until(lambda: streams(server)["open"] == 0)
    assert page.evaluate("DjangoSSE.state()")["connections"] == []
    assert console.errors() == []


def test_reload_resumes_every_feed_from_the_kept_id(
    server: ServerProcess, context: Any, console: Console, name: str
) -> None:
    page = new_tab(context, console, feeds_page(server, name))
    wait_live(page)
    with Publisher(server, name, count=40, rate=10) as publisher:
        until(lambda: publisher.sent >= 12)
        page.reload()
        wait_live(page)
    publish_sentinels(server, name)
    # Across the reload: every event of every feed, once, in order.
    assert settled(page) == [publisher.expected(part) for part in PARTS]
    assert len(recorded(page, "pageshow")) == 2
    assert console.errors() == []


@pytest.fixture
def bfcache_context(browser: Any) -> Iterator[Any]:
    # Playwright turns the back/forward cache off by default: a browser of its own with it on.
    with_cache = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    context = with_cache.new_context()
    context.set_default_timeout(20_000)
    yield context
    with_cache.close()


def test_back_forward_cache_resumes_every_feed(
    server: ServerProcess, bfcache_context: Any, console: Console, name: str
) -> None:
    page = new_tab(bfcache_context, console, feeds_page(server, name))
    wait_live(page)
    with Publisher(server, name, count=40, rate=10) as publisher:
        until(lambda: publisher.sent >= 10)
        page.goto(feeds_page(server, name, parts=""))
        until(lambda: publisher.sent >= 20)  # events published while the page is away
        page.go_back(wait_until="commit")  # a page from the cache fires no load event
        wait_live(page)
    publish_sentinels(server, name)
    assert settled(page) == [publisher.expected(part) for part in PARTS]
    shows = recorded(page, "pageshow")
    print("pageshow events:", shows)
    # Restored from the back/forward cache (not loaded again): the client's own resume.
    assert shows[-1]["persisted"] is True
    assert [e for e in console.errors() if "ERR_" not in e] == []


def test_server_restart_replays_every_feed_from_redis(
    start: StartServer,
    redis_url: str,
    context: Any,
    console: Console,
    name: str,
) -> None:
    env = {"REDIS_URL": redis_url, "DJANGO_SSE_KEY_PREFIX": "tabs" + uuid.uuid4().hex[:10]}
    server = start("daphne", app=APP, env=env)
    port = int(server.url.rsplit(":", 1)[1])
    page = new_tab(context, console, feeds_page(server, name))
    wait_live(page)
    for seq, part in enumerate(PARTS):
        publish(server, name, part, seq)
    for part in PARTS:
        until(lambda part=part: received(page, part))

    server.stop()
    page.wait_for_selector("#a:not([data-sse-state=open])", state="attached")
    # Published from a shell while the server is down: only the Redis log has them.
    code = "from django_sse import publish_sync\n" + "\n".join(
        f"publish_sync('fd.{name}.{part}', {{'seq': {seq}}})"
        for seq, part in zip(range(3, 9), PARTS * 2, strict=True)
    )
    manage("shell", "-c", code, env={**env, "DJANGO_SETTINGS_MODULE": "tests.support.settings"})
    restarted = start("daphne", app=APP, env=env, port=port)
    wait_live(page)
    publish_sentinels(restarted, name)
    assert settled(page) == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert streams(restarted)["open"] == 1
    expected = (
        "net::ERR_INCOMPLETE_CHUNKED_ENCODING",
        "net::ERR_CONNECTION_REFUSED",
        "net::ERR_CONNECTION_RESET",  # the stop cut a request in flight
    )
    assert [e for e in console.errors() if not e.endswith(expected)] == []


def test_a_stale_position_resets_only_its_own_feed(
    start: StartServer, context: Any, console: Console, name: str
) -> None:
    # A replay window of 5 events: feed a's group runs past it while the page is away.
    server = start("daphne", app=APP, env={"DJANGO_SSE_REPLAY_WINDOW": "5"})
    page = new_tab(context, console, feeds_page(server, name))
    wait_live(page)
    for seq, part in enumerate(PARTS):
        publish(server, name, part, seq)
    for part in PARTS:
        until(lambda part=part: received(page, part))

    page.goto(feeds_page(server, name, parts=""))
    for seq in range(3, 23):
        publish(server, name, "a", seq)  # 20 > the window
    publish(server, name, "b", 23)
    page.goto(feeds_page(server, name))
    wait_live(page)
    publish_sentinels(server, name)
    # a: a reset, on a's element only, then live again; b: exactly what it missed; c: nothing
    # missed.
    assert settled(page) == [[0], [1, 23], [2]]
    assert [e["root"] for e in recorded(page, "sse:reset")] == ["a"]
    assert console.errors() == []


INSECURE_HOST = "feeds.insecure.test"


@pytest.fixture
def insecure_context(browser: Any) -> Iterator[Any]:
    # A host name that is not loopback to the browser (it resolves one to 127.0.0.1 by a rule):
    # plain http there is not a secure context, as on a LAN host name, so no Web Locks.
    rules = f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1"
    other = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, rules]
    )
    context = other.new_context()
    context.set_default_timeout(20_000)
    yield context
    other.close()


def test_plain_http_on_a_lan_name_has_no_web_locks_and_each_tab_streams_alone(
    server: ServerProcess, insecure_context: Any, console: Console, name: str, tabs: list[Any]
) -> None:
    url = feeds_page(server, name).replace("127.0.0.1", INSECURE_HOST, 1)
    assert INSECURE_HOST in url
    open_live_tabs(insecure_context, console, url, 3, tabs)
    first = tabs[0]
    assert first.evaluate("[window.isSecureContext, !!navigator.locks]") == [False, False]
    assert first.evaluate("!!window.BroadcastChannel")  # there, but not enough to elect a tab
    # The fallback: one connection per tab, for all of that tab's feeds.
    until(lambda: streams(server)["open"] == 3)
    assert not any(tab.evaluate("DjangoSSE.state().tabs") for tab in tabs)
    assert all(len(tab.evaluate("DjangoSSE.state().connections")) == 1 for tab in tabs)
    for seq, part in enumerate(PARTS):
        publish(server, name, part, seq)
    publish_sentinels(server, name)
    for tab in tabs:
        assert settled(tab) == [[0], [1], [2]]
    # Django's SecurityMiddleware sends Cross-Origin-Opener-Policy, which Chromium ignores
    # (and says so) on an origin that is not potentially trustworthy.
    assert [e for e in console.errors() if "Cross-Origin-Opener-Policy" not in e] == []


def test_scan_starts_inserted_tags_at_once_and_is_all_the_global_offers(
    server: ServerProcess, context: Any, console: Console, name: str
) -> None:
    page = new_tab(context, console, feeds_page(server, name, parts="a"))
    wait_live(page, "a")
    assert page.evaluate("[Object.keys(DjangoSSE), Object.isFrozen(DjangoSSE)]") == [
        ["scan", "state"],
        True,
    ]
    markup = page.evaluate(
        """async (url) => {
          const html = await (await fetch(url)).text();
          return new DOMParser().parseFromString(html, "text/html").getElementById("b").outerHTML;
        }""",
        feeds_page(server, name, parts="b"),
    )
    # In the task that inserts the markup: not started yet (the observer runs after it), and
    # started by scan() right away.
    started = page.evaluate(
        """(html) => {
          const holder = document.createElement("div");
          holder.innerHTML = html;
          document.body.append(holder);
          const before = document.querySelector("#b[data-sse-root]") !== null;
          DjangoSSE.scan(holder);
          return [before, document.querySelector("#b[data-sse-root]") !== null];
        }""",
        markup,
    )
    assert started == [False, True]
    wait_live(page, "ab")
    publish(server, name, "b", 0)
    publish_sentinels(server, name, "ab")
    assert settled(page, "ab") == [[], [0]]
    until(lambda: streams(server)["open"] == 1)
    assert console.errors() == []


def test_a_tab_back_after_its_feed_was_dropped_gets_a_reset_not_a_partial_replay(
    server: ServerProcess, context: Any, console: Console, name: str, tabs: list[Any]
) -> None:
    tabs.append(new_tab(context, console, feeds_page(server, name, parts="a")))
    wait_live(tabs[0], "a")
    away = new_tab(context, console, feeds_page(server, name, parts="ac"))
    tabs.append(away)
    wait_live(away, "ac")
    until(lambda: len(streams(server)["opened"]) == 2)  # the leader widened to a and c
    assert tabs[0].evaluate("DjangoSSE.state().leading")
    publish(server, name, "c", 0)
    until(lambda: received(away, "c") == [0])

    # Away, it says goodbye: no tab needs c any more, and the leader's stream drops it.
    away.evaluate("document.dispatchEvent(new Event('freeze'))")
    until(lambda: len(streams(server)["opened"]) == 3)
    publish(server, name, "c", 1)  # in no tab's history
    publish(server, name, "a", 2)
    until(lambda: received(tabs[0], "a") == [2])
    away.evaluate("document.dispatchEvent(new Event('resume'))")
    # The history holds a's event but not c's: a replay would be partial, so both feeds of
    # the returning tab are told they missed events.
    until(lambda: len(recorded(away, "sse:reset")) == 2)
    assert sorted(e["root"] for e in recorded(away, "sse:reset")) == ["a", "c"]
    assert [e for e in console.errors() if "ERR_" not in e] == []
