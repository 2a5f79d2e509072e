"""presence(group) across two Daphne servers sharing Redis, including one that is SIGKILLed.

Each server answers ``/test/presence?group=...`` from its own process; what it says must cover
both servers' subscribers, and forget a crashed server's within a few seconds (its entries
expire: ``PRESENCE_TTL`` is 3 s here).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest

from tests.conftest import StartServer
from tests.scenarios.test_access import create_users, log_in
from tests.scenarios.test_concurrent_publishers import environment
from tests.support.raw_client import address, read_until, request
from tests.support.servers import manage
from tests.support.waiting import until

pytestmark = pytest.mark.server

GROUP = "x.presence.room"
PATH = "/test/presence/stream/room"


def presence(url: str) -> dict[str, object]:
    response = httpx.get(url + "/test/presence", params={"group": GROUP}, timeout=60)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def user_ids(url: str, *names: str) -> dict[str, int]:
    code = (
        "from django.contrib.auth.models import User\n"
        f"users = User.objects.filter(username__in={list(names)!r})\n"
        "print(dict(users.values_list('username', 'pk')))"
    )
    out = manage("shell", "--no-imports", "-c", code, env={"DATABASE_URL": url})
    ids: dict[str, int] = eval(out)
    return ids


class Tab:
    """One stream, read in the background, with the session cookie of a user (or none)."""

    def __init__(self, url: str, cookie: str | None = None) -> None:
        self.url, self.cookie = url, cookie
        self.received = b""

    async def open(self) -> None:
        host, port = address(self.url)
        self.reader, self.writer = await asyncio.open_connection(host, port)
        headers = {"Cookie": f"sessionid={self.cookie}"} if self.cookie else {}
        self.writer.write(request(PATH, headers, version="1.0"))
        # The head comes with the first chunk: ": open", or a joined event already there.
        head = await read_until(self.reader, b"\r\n\r\n", limit=60)
        assert b" 200 " in head.split(b"\r\n", 1)[0], head[:200]
        self.received = head.split(b"\r\n\r\n", 1)[1]
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while chunk := await self.reader.read(65536):
            self.received += chunk

    async def close(self) -> None:
        self.task.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def test_presence_covers_both_servers_and_forgets_a_killed_one(
    start: StartServer, redis_url: str, server_database: str
) -> None:
    env = environment(redis_url, DJANGO_SSE_PRESENCE="events", DJANGO_SSE_PRESENCE_TTL="3")
    a, b = start("daphne", env=env), start("daphne", env=env)
    alice, bob = "alice-" + uuid.uuid4().hex[:6], "bob-" + uuid.uuid4().hex[:6]
    create_users(server_database, alice, bob)
    ids = user_ids(server_database, alice, bob)
    sessions = {alice: log_in(a, alice), bob: log_in(a, bob)}  # one database: valid on both

    async def scenario() -> float:
        listener = Tab(b.url)  # anonymous, on B: sees the joined/left events
        await listener.open()
        alice_tabs = [Tab(a.url, sessions[alice]), Tab(a.url, sessions[alice])]
        others = [Tab(a.url), Tab(b.url, sessions[bob])]
        for tab in [*alice_tabs, *others]:
            await tab.open()

        def reached(url: str, count: int, users: list[int]) -> bool:
            found = presence(url)
            return found == {"count": count, "users": sorted(users)}

        # Each server sees both servers' streams, and each user once.
        for server in (a, b):
            await asyncio.to_thread(
                until, lambda s=server: reached(s.url, 5, [ids[alice], ids[bob]])
            )
        # manage.py sse_status, in a process of its own, reads the same from Redis.
        out = await asyncio.to_thread(manage, "sse_status", "--presence", GROUP, "--json", env=env)
        expected = {"count": 5, "users": sorted([ids[alice], ids[bob]])}
        assert json.loads(out)["presence"][GROUP] == expected
        # One joined per user and process, not per tab.
        await asyncio.to_thread(until, lambda: listener.received.count(b"event: joined") == 2)
        assert f'"user": {ids[alice]}'.encode() in listener.received or (
            f'"user":{ids[alice]}'.encode() in listener.received
        )

        # A second tab of alice leaves: she is still there; bob leaves: he is not, and "left".
        await alice_tabs.pop().close()
        await asyncio.to_thread(until, lambda: reached(b.url, 4, [ids[alice], ids[bob]]))
        await others.pop().close()
        await asyncio.to_thread(until, lambda: reached(b.url, 3, [ids[alice]]))
        await asyncio.to_thread(until, lambda: listener.received.count(b"event: left") == 1)

        # A crashes: nothing of it is left after its entries expire (3 s).
        killed = time.monotonic()
        a.kill()
        await asyncio.to_thread(until, lambda: reached(b.url, 1, []))
        forgotten_after = time.monotonic() - killed
        await listener.close()
        return forgotten_after

    forgotten_after = asyncio.run(scenario())
    print(f"a SIGKILLed server's subscribers were forgotten after {forgotten_after:.1f} s")


def test_presence_on_the_in_memory_layer_covers_the_process(start: StartServer) -> None:
    server = start("daphne", env={"DJANGO_SSE_PRESENCE": "1"})

    async def scenario() -> None:
        tabs = [Tab(server.url), Tab(server.url)]
        for tab in tabs:
            await tab.open()
        await asyncio.to_thread(until, lambda: presence(server.url)["count"] == 2)
        for tab in tabs:
            await tab.close()
        await asyncio.to_thread(until, lambda: presence(server.url)["count"] == 0)

    asyncio.run(scenario())
