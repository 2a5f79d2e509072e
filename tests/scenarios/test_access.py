"""Access to event streams on a real server, with real logged-in sessions.

Refusals come before any event; two users on one filtered group never see each other's rows
(over hundreds of events, interleaved with rows of nobody); and a stream served over POST is
guarded by Django's CSRF protection like any other POST. (Refusals by SubscriptionView itself are
also covered in-process in tests/unit/test_views.py and on Daphne in
tests/scenarios/test_live_servers.py.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.conftest import StartServer
from tests.support.raw_client import RawStream
from tests.support.servers import ServerProcess, manage
from tests.support.waiting import until_async

pytestmark = pytest.mark.server

EVENTS = 600  # published round-robin to the two users and to nobody


def create_users(server_database: str, *names: str) -> None:
    code = "from django.contrib.auth.models import User\n" + "".join(
        f"User.objects.create_user({name!r}, password='pw-{name}')\n" for name in names
    )
    manage("shell", "--no-imports", "-c", code, env={"DATABASE_URL": server_database})


def log_in(server: ServerProcess, name: str) -> str:
    """Log in as a browser would; the session cookie."""
    with httpx.Client(base_url=server.url, timeout=20) as client:
        response = client.post("/test/acc/login", data={"username": name, "password": f"pw-{name}"})
        assert response.status_code == 200, response.text
        return client.cookies["sessionid"]


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_two_users_never_receive_each_others_rows(
    start: StartServer, server_database: str, kind: str
) -> None:
    server = start(kind, env={"DJANGO_SSE_PING_INTERVAL": "0.5"})
    alice, bob = ("alice-" + uuid.uuid4().hex[:6]), ("bob-" + uuid.uuid4().hex[:6])
    create_users(server_database, alice, bob)
    sessions = {alice: log_in(server, alice), bob: log_in(server, bob)}

    async def scenario() -> dict[str, list[dict[str, object]]]:
        # Refused before any event: no session, a forged one, a session without the permission.
        for cookie in [None, "sessionid=forged", f"sessionid={sessions[alice]}"]:
            path = (
                "/test/acc/mine" if cookie != f"sessionid={sessions[alice]}" else "/test/live/perm"
            )
            headers = {"Connection": "close"} | ({"Cookie": cookie} if cookie else {})
            refused = RawStream(server.url, path, headers)
            assert await refused.open() in (401, 403)
            await refused.read_to_end()
            assert b"text/event-stream" not in refused.head.lower()
            assert refused.events() == []
            await refused.close()

        streams = {
            name: RawStream(server.url, "/test/acc/mine", {"Cookie": f"sessionid={session}"})
            for name, session in sessions.items()
        }
        for stream in streams.values():
            assert await stream.open() == 200
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:

            async def both_subscribed() -> bool:  # before the first publish
                groups = (await client.get("/test/live/hub")).json()["groups"]
                return bool(groups.get("x.acc.rows") == 2)

            await until_async(both_subscribed)
            response = await client.get(
                "/test/acc/publish",
                params={"group": "x.acc.rows", "count": EVENTS, "owners": f"{alice},{bob},"},
            )
            assert len(response.json()["ids"]) == EVENTS
            # Then one last event each: once it arrived, nothing published before is still on
            # its way (each subscriber's events arrive in order).
            await client.get(
                "/test/acc/publish",
                params={
                    "group": "x.acc.rows",
                    "count": 2,
                    "start": EVENTS,
                    "owners": f"{alice},{bob}",
                },
            )
        await asyncio.gather(*(s.read_events(EVENTS // 3 + 1, 30) for s in streams.values()))
        received = {
            name: [json.loads(event.data) for event in stream.events()]
            for name, stream in streams.items()
        }
        for stream in streams.values():
            await stream.close()
        return received

    received = asyncio.run(scenario())
    for index, name in enumerate([alice, bob]):
        rows = received[name]
        assert {row["owner"] for row in rows} == {name}
        assert [row["n"] for row in rows] == [*range(index, EVENTS, 3), EVENTS + index]


def test_a_post_stream_needs_the_csrf_token(start: StartServer) -> None:
    server = start("uvicorn", env={"DJANGO_SSE_PING_INTERVAL": "0.5"})
    group = "x.post" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=server.url, timeout=20) as client:
        refused = client.post("/test/acc/post-stream", data={"group": group})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        assert refused.headers["content-type"].startswith("text/html")

        client.get("/admin/login/")  # any form page sets the CSRF cookie
        token = client.cookies["csrftoken"]
        with client.stream(
            "POST",
            "/test/acc/post-stream",
            data={"group": group},
            headers={"X-CSRFToken": token},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            lines = response.iter_lines()
            assert next(lines) == ": open"
            client.get("/test/acc/publish", params={"group": group, "owners": "post"})
            data = next(line for line in lines if line.startswith("data: "))
            assert json.loads(data[len("data: ") :]) == {"n": 0, "owner": "post"}


# --- access ends while the stream is open --------------------------------------------------


async def hub_groups(client: httpx.AsyncClient, server: ServerProcess) -> dict[str, int]:
    groups: dict[str, int] = (await client.get(server.url + "/test/live/hub")).json()["groups"]
    return groups


def user_groups(groups: dict[str, int]) -> int:
    """Streams in the hub's per-user control groups (see django_sse/live/access.py)."""
    return sum(count for name, count in groups.items() if name.startswith("django_sse.user."))


async def publish_rows(
    client: httpx.AsyncClient, server: ServerProcess, owner: str, n: int
) -> None:
    response = await client.get(
        server.url + "/test/acc/publish",
        params={"group": "x.acc.rows", "count": 1, "start": n, "owners": owner},
    )
    assert response.status_code == 200


def rows(stream: RawStream) -> list[int]:
    return [json.loads(event.data)["n"] for event in stream.events()]


@pytest.mark.parametrize("logout_path", ["/test/acc/logout", "/test/acc/alogout"])
def test_logout_on_one_server_ends_the_users_streams_on_another(
    start: StartServer, server_database: str, redis_url: str, logout_path: str
) -> None:
    env = {
        "REDIS_URL": redis_url,
        "DJANGO_SSE_KEY_PREFIX": "logout" + uuid.uuid4().hex[:8],
        "DJANGO_SSE_PING_INTERVAL": "0.5",
        # Only the logout can end the stream within the test.
        "DJANGO_SSE_REAUTHORIZE_INTERVAL": "3600",
    }
    first, second = start("daphne", env=env), start("daphne", env=env)
    alice, bob = ("alice-" + uuid.uuid4().hex[:6]), ("bob-" + uuid.uuid4().hex[:6])
    create_users(server_database, alice, bob)
    sessions = {alice: log_in(first, alice), bob: log_in(first, bob)}

    async def scenario() -> None:
        streams = {
            name: RawStream(
                second.url,
                "/test/acc/mine",
                {"Cookie": f"sessionid={session}", "Connection": "close"},
            )
            for name, session in sessions.items()
        }
        for stream in streams.values():
            assert await stream.open() == 200
        async with httpx.AsyncClient(timeout=30) as client:

            async def both_subscribed() -> bool:
                groups = await hub_groups(client, second)
                return groups.get("x.acc.rows") == 2 and user_groups(groups) == 2

            await until_async(both_subscribed)
            await publish_rows(client, first, alice, 0)
            await publish_rows(client, first, bob, 1)
            await streams[alice].read_events(1, 30)
            await streams[bob].read_events(1, 30)

            response = await client.post(
                first.url + logout_path, headers={"Cookie": f"sessionid={sessions[alice]}"}
            )
            assert response.status_code == 200, response.text
            # The logout went through the first server; alice's stream on the second ends.
            await streams[alice].read_to_end(within=60)
            assert rows(streams[alice]) == [0]

            async def alice_left() -> bool:
                groups = await hub_groups(client, second)
                return groups.get("x.acc.rows") == 1 and user_groups(groups) == 1

            await until_async(alice_left)
            # Her browser's reconnect is refused; bob's stream goes on.
            again = RawStream(
                second.url, "/test/acc/mine", {"Cookie": f"sessionid={sessions[alice]}"}
            )
            assert await again.open() == 401
            await again.close()
            await publish_rows(client, first, bob, 2)
            await streams[bob].read_events(2, 30)
            assert rows(streams[bob]) == [1, 2]
        for stream in streams.values():
            await stream.close()

    asyncio.run(scenario())
    for server in (first, second):
        assert "Traceback" not in server.log(), server.log()


REVOCATIONS = {
    "deactivated": "User.objects.filter(username={name!r}).update(is_active=False)",
    "session deleted": (
        "from django.contrib.sessions.models import Session\n"
        "Session.objects.filter(session_key={session!r}).delete()"
    ),
}


@pytest.mark.parametrize("revocation", list(REVOCATIONS))
def test_a_revoked_user_stops_receiving_within_the_interval(
    start: StartServer, server_database: str, markers: Path, revocation: str
) -> None:
    server = start(
        "daphne",
        env={"DJANGO_SSE_PING_INTERVAL": "0.5", "DJANGO_SSE_REAUTHORIZE_INTERVAL": "0.5"},
    )
    alice, bob = ("alice-" + uuid.uuid4().hex[:6]), ("bob-" + uuid.uuid4().hex[:6])
    create_users(server_database, alice, bob)
    sessions = {alice: log_in(server, alice), bob: log_in(server, bob)}

    def checks(name: str) -> int:
        path = markers / f"checks-{name}"
        return len(path.read_text().splitlines()) if path.exists() else 0

    async def at_least(name: str, count: int) -> bool:
        return checks(name) >= count

    async def scenario() -> None:
        streams = {
            name: RawStream(
                server.url,
                "/test/acc/checked",
                {"Cookie": f"sessionid={session}", "Connection": "close"},
            )
            for name, session in sessions.items()
        }
        for stream in streams.values():
            assert await stream.open() == 200
        # The first check and one re-check each, with both still allowed.
        await until_async(lambda: at_least(alice, 2))
        await until_async(lambda: at_least(bob, 2))
        async with httpx.AsyncClient(timeout=30) as client:
            await publish_rows(client, server, alice, 0)
            await streams[alice].read_events(1, 30)

            code = REVOCATIONS[revocation].format(name=alice, session=sessions[alice])
            manage(
                "shell",
                "--no-imports",
                "-c",
                "from django.contrib.auth.models import User\n" + code,
                env={"DATABASE_URL": server_database},
            )
            await streams[alice].read_to_end(within=60)
            assert rows(streams[alice]) == [0]
            again = RawStream(
                server.url, "/test/acc/checked", {"Cookie": f"sessionid={sessions[alice]}"}
            )
            assert await again.open() == 401
            await again.close()

            # Bob's stream is re-checked and goes on.
            seen = checks(bob)
            await until_async(lambda: at_least(bob, seen + 2))
            await publish_rows(client, server, bob, 1)
            await streams[bob].read_events(1, 30)
            assert rows(streams[bob]) == [1]
            assert not streams[bob].eof
        for stream in streams.values():
            await stream.close()

    asyncio.run(scenario())
    assert "Traceback" not in server.log(), server.log()


STREAMS_RECHECKED = 40


def test_re_checked_streams_hold_no_database_connection_between_checks(
    start: StartServer, postgres_url: str, markers: Path
) -> None:
    """Every re-check queries (session, user, check) and closes its connection again.

    Without that, each stream would keep the connection its first re-check opened (the control
    case of tests/scenarios/test_idle_database.py shows what that costs).
    """
    database = urlsplit(postgres_url).path.strip("/") + "_django_sse_access"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone():
            connection.execute(f'CREATE DATABASE "{database}"')
    url = urlsplit(postgres_url)._replace(path="/" + database).geturl()
    manage("migrate", "--noinput", env={"DATABASE_URL": url})
    server = start(
        "daphne",
        env={
            "DATABASE_URL": url,
            "DJANGO_SSE_PING_INTERVAL": "5",
            "DJANGO_SSE_REAUTHORIZE_INTERVAL": "1",
        },
    )
    name = "carol-" + uuid.uuid4().hex[:6]
    create_users(url, name)
    session = log_in(server, name)

    def connections() -> int:
        with psycopg.connect(url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            ).fetchone()
        assert row is not None
        return int(row[0])

    def checks() -> int:
        path = markers / f"checks-{name}"
        return len(path.read_text().splitlines()) if path.exists() else 0

    async def scenario() -> int:
        streams = [
            RawStream(server.url, "/test/acc/checked", {"Cookie": f"sessionid={session}"})
            for _ in range(STREAMS_RECHECKED)
        ]
        for stream in streams:
            assert await stream.open() == 200

        async def rechecked() -> bool:
            return checks() >= 3 * STREAMS_RECHECKED  # the first check and two re-checks each

        await until_async(rechecked, within=120)

        # Re-checks keep coming, each with its own connection for a moment. A stream that kept
        # one would hold it for good: the count would stay at STREAMS_RECHECKED or more. Only
        # the checks in flight hold one (a busy machine slows them, hence the margin).
        seen: list[int] = []

        async def released() -> bool:
            seen.append(connections())
            return seen[-1] <= STREAMS_RECHECKED // 4

        await until_async(released, within=60)
        for _ in range(20):  # a few more samples, for the figure printed below
            seen.append(connections())
            await asyncio.sleep(0.05)
        assert not any(stream.eof for stream in streams)
        for stream in streams:
            await stream.close()
        return min(seen)

    held = asyncio.run(scenario())
    print(f"\n{STREAMS_RECHECKED} streams re-checked every second: as few as {held} connections")
    assert "Traceback" not in server.log(), server.log()
