"""The README's snippets in a real project, under Daphne and uvicorn, as a new user would run them.

``tests/support/real_project.py`` builds the project from README.md's marked blocks with the
middleware
a real project has (GZip, ConditionalGet, Common, Locale, django-debug-toolbar; DEBUG on), once.
Each server kind starts once; every test checks one snippet against it, with the clients a user
has: httpx sending ``Accept-Encoding: gzip`` as browsers do, the admin's login and forms, and
Chromium for the template tag. A failure names the README block and shows the server's log.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.chromium import Console, launch_chromium
from tests.support.readme_blocks import optional_block, readme_block
from tests.support.real_project import USERS, Project, build_project
from tests.support.servers import ServerProcess, start_server
from tests.support.sse_parser import Event, parse

pytestmark = pytest.mark.server

# What a browser's EventSource sends (and every browser accepts gzip).
STREAM_HEADERS = {"Accept": "text/event-stream", "Accept-Encoding": "gzip, deflate"}
Logins = dict[str, httpx.Cookies]  # user name -> the cookies of a logged-in session
READ_TIMEOUT = 15.0  # generous for a loaded machine; every wait is for a condition


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return build_project(tmp_path_factory.mktemp("real-project"))


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(
    request: pytest.FixtureRequest, project: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    kind = request.param
    # uvicorn as the README's Shutdown section runs it, so that it stops with streams open.
    args = ["--timeout-graceful-shutdown", "5"] if kind == "uvicorn" else []
    started = start_server(
        kind,
        tmp_path_factory.mktemp(f"{kind}-log"),
        env=project.env(),
        app=f"{project.name}.asgi:application",
        ready_path="/admin/login/",
        args=args,
        cwd=project.base,
    )
    yield started
    started.stop()


class Snippet:
    """A README block checked in a running project: a failure names it and shows the log."""

    def __init__(self, name: str, project: Project, where: str, log: Callable[[], str]) -> None:
        self.block = readme_block(name)
        self.project = project
        self.where = where
        self._log = log
        self._log_start = len(log())  # a server runs for the whole module: skip what came before

    @classmethod
    def on(cls, name: str, server: ServerProcess, project: Project) -> Snippet:
        return cls(name, project, f"under {server.kind}", server.log)

    def failure(self, what: str) -> str:
        log = self._log()[self._log_start :]
        tail = "\n".join(log.splitlines()[-60:])
        return (
            f"README snippet {self.block.origin()} {self.where}: {what}"
            f"{self.project.blame(log)}\n--- its log meanwhile ---\n{tail}"
        )


class EventReader:
    """The events of a live response, read one by one as they arrive (gzip decoded by httpx)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.body = b""
        self._chunks = response.iter_bytes()
        self._taken = 0

    def _more(self) -> str | None:
        """Read the next chunk; None, or why there is none."""
        try:
            self.body += next(self._chunks)
        except StopIteration:
            return f"the stream ended; its whole body was {self.body!r}"
        except httpx.ReadTimeout:
            return f"nothing more arrived within {READ_TIMEOUT} s; so far: {self.body!r}"
        except httpx.HTTPError as error:
            return f"reading failed: {error!r}; so far: {self.body!r}"
        return None

    def opened(self) -> str | None:
        """Wait for the first bytes (the ``: open`` comment of a subscription); None when there."""
        while not self.body.strip():
            if problem := self._more():
                return problem
        return None

    def next_event(self) -> Event | str:
        """The next event, or why none came."""
        while True:
            events = parse(self.body).events
            if len(events) > self._taken:
                self._taken += 1
                return events[self._taken - 1]
            if problem := self._more():
                return problem


def stream_head(response: httpx.Response) -> str:
    headers = {k: v for k, v in response.headers.items() if k != "set-cookie"}
    return f"status {response.status_code}, headers {headers}"


def expect_stream(response: httpx.Response) -> str | None:
    """None for an event stream; otherwise what came instead."""
    content_type = response.headers.get("content-type", "")
    if response.status_code == 200 and content_type.startswith("text/event-stream"):
        return None
    return f"expected a 200 event stream, got {stream_head(response)}: {response.read()[:500]!r}"


@contextmanager
def open_stream(http: httpx.Client, path: str, snippet: Snippet) -> Iterator[httpx.Response]:
    """GET ``path`` as ``EventSource`` does; a response that never comes fails the snippet."""
    try:
        with http.stream("GET", path, headers=STREAM_HEADERS) as response:
            yield response
    except httpx.TimeoutException as error:
        raise AssertionError(
            snippet.failure(f"GET {path}: no response within {READ_TIMEOUT} s ({error!r})")
        ) from None


def client(server: ServerProcess, cookies: httpx.Cookies | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=httpx.Timeout(30, read=READ_TIMEOUT), cookies=cookies
    )


def log_in(session: httpx.Client, name: str) -> None:
    """Log ``session`` in through the project's real login view (the admin's)."""
    session.get("/admin/login/")
    response = session.post(
        "/admin/login/?next=/admin/",
        data={
            "username": name,
            "password": USERS[name][0],
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, f"logging in {name} failed: {response.text[:2000]}"


@pytest.fixture(scope="module")
def logins(server: ServerProcess) -> Logins:
    """The session and CSRF cookies of every user, logged in once per server (hashing is slow)."""
    cookies = {}
    for name in USERS:
        with client(server) as session:
            log_in(session, name)
            # With their domain, so that a cookie the server sets later replaces its copy.
            cookies[name] = session.cookies
    return cookies


def admin_save(admin: httpx.Client, path: str, fields: dict[str, str]) -> None:
    """Save an object through its admin form, as a person would (a save in the server)."""
    admin.get(path)
    response = admin.post(
        path, data={**fields, "csrfmiddlewaretoken": admin.cookies["csrftoken"], "_save": "Save"}
    )
    assert response.status_code == 302, f"the admin refused {path}: {response.text[:3000]}"


def set_order_status(project: Project, pk: int, status: str, version: int | None = None) -> None:
    """Change an order's row behind the server's back: the view's async source polls it."""
    with closing(sqlite3.connect(project.database, timeout=20)) as database, database:
        database.execute(
            "UPDATE orders_order SET status = ?, version = coalesce(?, version + 1) WHERE id = ?",
            (status, version, pk),
        )


def test_settings_are_the_readme_install_section_plus_the_real_middleware(
    project: Project,
) -> None:
    origin = readme_block("settings").origin()
    apps, middleware = project.settings["INSTALLED_APPS"], project.settings["MIDDLEWARE"]
    # "..." in the README's lists kept what startproject wrote.
    assert {"django_sse", "django.contrib.admin"} <= set(apps), (origin, apps)
    for name in [
        "django.middleware.gzip.GZipMiddleware",
        "django.middleware.http.ConditionalGetMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "debug_toolbar.middleware.DebugToolbarMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]:
        assert name in middleware, (origin, name, middleware)


def test_minimal_view_streams_each_event_as_it_happens(
    server: ServerProcess, project: Project
) -> None:
    """A browser-like client (gzip accepted) gets each status before the next one exists."""
    snippet = Snippet.on("view", server, project)
    pk = project.orders["alice"]
    set_order_status(project, pk, "placed", version=1)  # as it was before the other tests
    with (
        client(server) as http,
        open_stream(http, f"/orders/{pk}/status", snippet) as response,
    ):
        problem = expect_stream(response)
        assert problem is None, snippet.failure(problem or "")
        reader = EventReader(response)
        for version, status in enumerate(["placed", "packed", "shipped"], start=1):
            if version > 1:
                set_order_status(project, pk, status)
            event = reader.next_event()
            assert isinstance(event, Event), snippet.failure(
                f"status {version} ({status}) did not arrive: {event} ({stream_head(response)})"
            )
            assert (event.type, json.loads(event.data), event.last_event_id) == (
                "status",
                {"state": status, "version": version},
                str(version),
            ), snippet.failure(f"unexpected event {event}")


def saved_item_event(
    server: ServerProcess, snippet: Snippet, logins: Logins, fields: dict[str, str]
) -> Event:
    """Open ``items/live``, add an item in the admin, and return the event that arrives."""
    with (
        client(server, logins["admin"]) as admin,
        client(server) as http,
        open_stream(http, "/items/live", snippet) as response,
    ):
        problem = expect_stream(response)
        assert problem is None, snippet.failure(problem or "")
        reader = EventReader(response)
        problem = reader.opened()
        assert problem is None, snippet.failure(f"no `: open` comment: {problem}")
        admin_save(admin, "/admin/items/item/add/", fields)
        event = reader.next_event()
        assert isinstance(event, Event), snippet.failure(f"the saved item did not arrive: {event}")
        return event


def test_model_save_reaches_a_live_stream(
    server: ServerProcess, project: Project, logins: Logins
) -> None:
    """The Models snippet registers Item: a save in the admin reaches ``items/live``."""
    snippet = Snippet.on("models", server, project)
    name = f"Plumbus {server.kind}"
    event = saved_item_event(server, snippet, logins, {"name": name, "price": "32.99"})
    assert (event.type, json.loads(event.data)["name"]) == ("created", name), snippet.failure(
        f"unexpected event {event}"
    )


def test_live_payload_is_what_a_reload_shows(
    server: ServerProcess, project: Project, logins: Logins
) -> None:
    """Issue 10, item 5: a price typed as "5" is "5.00" in the database, so on a reload."""
    snippet = Snippet.on("models", server, project)
    name = f"Five {server.kind}"
    event = saved_item_event(server, snippet, logins, {"name": name, "price": "5"})
    with client(server) as http:
        page = http.get("/").text
    after_name = page.partition(name)[2][:100]  # the item's row, in the README's template
    assert "5.00" in after_name, snippet.failure(f"the page shows {name!r}, then {after_name!r}")
    price = json.loads(event.data)["price"]
    assert price == "5.00", snippet.failure(f"live price {price!r}; a reload shows '5.00'")


def test_access_control_refuses_anonymous_and_other_users(
    server: ServerProcess, project: Project, logins: Logins
) -> None:
    snippet = Snippet.on("access", server, project)
    alice_order = project.orders["alice"]
    with client(server) as anonymous, client(server, logins["bob"]) as bob:
        for who, http, path, expected in [
            ("anonymous", anonymous, f"/orders/{alice_order}/live", 401),  # login_required
            ("anonymous", anonymous, "/orders/live", 401),
            ("bob", bob, f"/orders/{alice_order}/live", 403),  # check=owns_order: not his
            ("bob", bob, "/orders/live", 403),  # permission_required: he lacks it
        ]:
            with open_stream(http, path, snippet) as response:
                assert response.status_code == expected, snippet.failure(
                    f"{who} on {path}: expected {expected}, got {stream_head(response)}: "
                    f"{response.read()[:300]!r}"
                )


def test_access_control_streams_for_the_owner(
    server: ServerProcess, project: Project, logins: Logins
) -> None:
    """Alice, logged in, streams her order and sees its change; ``orders/live`` filters."""
    snippet = Snippet.on("access", server, project)
    alice_order, bob_order = project.orders["alice"], project.orders["bob"]
    with client(server, logins["alice"]) as alice, client(server, logins["admin"]) as admin:
        for step, path in enumerate([f"/orders/{alice_order}/live", "/orders/live"]):
            status = f"step-{step}"
            with open_stream(alice, path, snippet) as response:
                problem = expect_stream(response)
                assert problem is None, snippet.failure(f"alice on {path}: {problem}")
                reader = EventReader(response)
                problem = reader.opened()
                assert problem is None, snippet.failure(f"{path}: {problem}")
                # Bob's order first: the filter of orders/live must drop it; then alice's.
                for pk, owner in [(bob_order, "bob"), (alice_order, "alice")]:
                    admin_save(
                        admin,
                        f"/admin/orders/order/{pk}/change/",
                        {"customer": str(project.users[owner]), "status": status, "version": "1"},
                    )
                event = reader.next_event()
                assert isinstance(event, Event), snippet.failure(
                    f"alice on {path}: her order's change did not arrive: {event}"
                )
                data = json.loads(event.data)
                assert (event.type, data["id"], data["status"]) == (
                    "updated",
                    alice_order,
                    status,
                ), snippet.failure(f"alice on {path} got {event}")


def test_access_control_sync_check(server: ServerProcess, project: Project, logins: Logins) -> None:
    """The sync ``check`` of the Access-control section refuses bob and lets alice stream."""
    if optional_block("access-sync") is None:
        pytest.skip("README.md has no block marked <!-- real-project: access-sync -->")
    snippet = Snippet.on("access-sync", server, project)
    path = f"/orders/{project.orders['alice']}/live-sync"
    with client(server, logins["alice"]) as alice, client(server, logins["bob"]) as bob:
        with open_stream(bob, path, snippet) as response:
            assert response.status_code == 403, snippet.failure(
                f"bob on {path}: expected 403, got {stream_head(response)}: "
                f"{response.read()[:300]!r}"
            )
        with open_stream(alice, path, snippet) as response:
            problem = expect_stream(response) or EventReader(response).opened()
            assert problem is None, snippet.failure(f"alice on {path}: {problem}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


@pytest.mark.browser
def test_template_tag_page_shows_a_change_live(
    server: ServerProcess, project: Project, logins: Logins, browser: Any
) -> None:
    snippet = Snippet.on("template", server, project)
    console = Console()
    context = browser.new_context()
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("console", lambda message: console.messages.append((message.type, message.text)))
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    try:
        page.goto(server.url + "/")
        assert page.locator("#djDebug").count() == 1, "django-debug-toolbar is not on the page"

        def wait(what: str, expression: str, arg: Any = None) -> None:
            try:
                page.wait_for_function(expression, arg=arg)
            except Exception as error:
                state = page.eval_on_selector("#live", "e => e.outerHTML")
                raise AssertionError(
                    snippet.failure(
                        f"{what}: {error}\nconsole errors: {console.errors()}\n#live: {state}"
                    )
                ) from None

        wait(
            "the page never connected",
            "document.querySelector('#live')?.dataset.sseState === 'open'",
        )
        name = f"Portal Gun {server.kind}"
        rows = "[...document.querySelectorAll('#live [data-sse-list] > li')]"
        with client(server, logins["admin"]) as admin:
            admin_save(admin, "/admin/items/item/add/", {"name": name, "price": "999.99"})
            wait(
                "the saved item never appeared",
                f"name => {rows}.some(li => li.textContent.includes(name))",
                name,
            )
            pk = page.eval_on_selector(
                "#live [data-sse-list]",
                "(list, name) => [...list.children].find(li => li.textContent.includes(name))"
                ".dataset.sseKey",
                name,
            )
            admin_save(
                admin, f"/admin/items/item/{pk}/change/", {"name": name + " XL", "price": "1000"}
            )
            wait(
                "the change never appeared",
                f"name => {rows}.some(li => li.textContent.includes(name))",
                name + " XL",
            )
        assert console.errors() == [], console.errors()
    finally:
        context.close()


def free_port() -> int:
    """A free port for ``runserver``, which cannot be handed a socket: from this suite's range.

    Picked at random, not the first free one: another run of this suite on the machine picks
    from the same range, and between its probe and its server's bind the port looks free.
    """
    ports = list(range(24000, 25000))
    random.shuffle(ports)
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 24000-24999")


RUNSERVER_BANNER = "Starting ASGI/Daphne"


@contextmanager
def runserver(project: Project, log_path: Path, snippet: Snippet) -> Iterator[str]:
    """``manage.py runserver`` on a free port, once its own banner says it serves: its URL.

    Until then a port taken meanwhile by another process could answer for it; runserver then
    exits with "That port is already in use", and another port is tried.
    """
    for _attempt in range(5):
        port = free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=project.base,
                env=project.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while process.poll() is None:
                if RUNSERVER_BANNER in log_path.read_text(errors="replace"):
                    try:
                        if httpx.get(url + "/admin/login/", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                assert time.monotonic() < deadline, snippet.failure(
                    f"no {RUNSERVER_BANNER!r} banner and answer within 60 s: not served by Daphne?"
                )
                time.sleep(0.1)
            else:
                if "already in use" in log_path.read_text(errors="replace"):
                    continue
                raise AssertionError(snippet.failure(f"it exited with {process.returncode}"))
            yield url
            return
        finally:
            process.terminate()
            process.wait(15)
    raise AssertionError(snippet.failure("every port tried was taken"))


def test_runserver_is_daphne_and_streams(project: Project, tmp_path: Path) -> None:
    """The Install section's ``"daphne"`` entry: "makes `runserver` an ASGI server"."""
    log_path = tmp_path / "runserver.log"
    log_path.touch()
    snippet = Snippet(
        "settings",
        project,
        "with manage.py runserver",
        lambda: log_path.read_text(errors="replace"),
    )
    with runserver(project, log_path, snippet) as url:
        with (
            httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=READ_TIMEOUT)) as http,
            open_stream(http, "/items/live", snippet) as response,
        ):
            problem = expect_stream(response) or EventReader(response).opened()
            assert problem is None, snippet.failure(problem or "")
