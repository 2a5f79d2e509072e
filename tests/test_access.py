"""Access to event streams on a real server, with real logged-in sessions.

Refusals come before any event; two users on one filtered group never see each other's rows
(over hundreds of events, interleaved with rows of nobody); and a stream served over POST is
guarded by Django's CSRF protection like any other POST. (Refusals by SubscriptionView itself are
also covered in-process in tests/test_views.py and on Daphne in tests/test_live_servers.py.)
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from tests.conftest import StartServer
from tests.servers import ServerProcess, manage
from tests.stream_client import RawStream
from tests.waiting import until_async

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
                return bool(groups.get("x.rows") == 2)

            await until_async(both_subscribed)
            response = await client.get(
                "/test/acc/publish",
                params={"group": "x.rows", "count": EVENTS, "owners": f"{alice},{bob},"},
            )
            assert len(response.json()["ids"]) == EVENTS
            # Then one last event each: once it arrived, nothing published before is still on
            # its way (each subscriber's events arrive in order).
            await client.get(
                "/test/acc/publish",
                params={"group": "x.rows", "count": 2, "start": EVENTS, "owners": f"{alice},{bob}"},
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
            assert response.headers["content-type"] == "text/event-stream"
            lines = response.iter_lines()
            assert next(lines) == ": open"
            client.get("/test/acc/publish", params={"group": group, "owners": "post"})
            data = next(line for line in lines if line.startswith("data: "))
            assert json.loads(data[len("data: ") :]) == {"n": 0, "owner": "post"}
