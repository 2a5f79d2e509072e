"""The outbox across real processes: Redis down at commit, a process killed after its commit.

A Daphne server streams ``items.item`` to a client that behaves like ``EventSource``
(reconnects with ``Last-Event-ID``); items are saved by ``manage.py shell`` in processes of
their own. Redis is a ``redis-server`` of the test's own, stopped and started again.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.support.live_client import LiveStream
from tests.support.raw_client import ID, RETRY, Browser
from tests.support.redis_server import RedisServer
from tests.support.servers import ROOT, manage, server_env, shell
from tests.support.waiting import until_async

pytestmark = pytest.mark.server

PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
EVENT = re.compile(rb"^event: ?(.*)$", re.M)
DATA = re.compile(rb"^data: ?(.*)$", re.M)


class ItemsBrowser(Browser):
    """``Browser`` that records every event's type and the ``name`` in its payload."""

    def __init__(self, url: str, path: str, retry: float = 0.3) -> None:
        super().__init__(url, path, retry=retry)
        self.events: list[tuple[str, str]] = []

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        for block in blocks:
            if (retry := RETRY.search(block)) is not None:
                self.retry = int(retry[1]) / 1000
            if (event_id := ID.search(block)) is not None:
                self.last_id = event_id[1].decode()
            kind, payload = EVENT.search(block), DATA.search(block)
            if kind is not None and payload is not None and kind[1] != b"reset":
                self.events.append((kind[1].decode(), json.loads(payload[1])["name"]))

    async def wait_for(self, name: str, limit: float = 60) -> None:
        await until_async(lambda: name in {n for _, n in self.events}, within=limit)

    async def settle(self, quiet: float = 1.0) -> list[tuple[str, str]]:
        seen = -1
        while len(self.events) != seen:
            seen = len(self.events)
            await asyncio.sleep(quiet)
        return self.events


def environment(redis_url: str, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_BACKEND": PUBSUB,
        "DATABASE_URL": database_url,
        "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:12],
        "DJANGO_SSE_PING_INTERVAL": "0.3",
        **extra,
    }


# The PostgreSQL database outlives a run: every name is unique to the test that saves it.
CREATE = """
from demo_project.items.models import Item
from django_sse.models import OutboxEvent
item = Item.objects.create(name={name!r}, price="1.00")
print(item.pk, OutboxEvent.objects.filter(data__contains={name!r}).count())
"""

PENDING = """
from django_sse.models import OutboxEvent
print(OutboxEvent.objects.filter(data__contains={name!r}).count())
"""


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_a_save_while_redis_is_down_reaches_a_live_client_once_redis_is_back(
    start: StartServer,
    redis_server: RedisServer,
    database: str,
) -> None:
    env = environment(redis_server.url, database, DJANGO_SSE_OUTBOX_RELAY_INTERVAL="0.5")
    server = start("daphne", env=env)
    shell_env = {k: v for k, v in env.items() if k != "DJANGO_SSE_OUTBOX_RELAY_INTERVAL"}

    before, during = unique("before"), unique("during")

    async def scenario() -> tuple[list[tuple[str, str]], str]:
        browser = ItemsBrowser(server.url, "/items/live")
        await browser.open()
        try:
            await asyncio.to_thread(shell, CREATE.format(name=before), shell_env)
            await browser.wait_for(before)  # the client has a last id to resume from
            redis_server.kill()
            # save() returns normally; its event waits in the outbox (published: 0 of 1).
            saved = await asyncio.to_thread(shell, CREATE.format(name=during), shell_env)
            redis_server.start()
            # Nothing else saves: the server's periodic relay publishes it.
            await browser.wait_for(during)
            return await browser.settle(), saved
        finally:
            await browser.close()

    events, saved = asyncio.run(scenario())
    assert saved.split()[1] == "1", "the event was not in the outbox after the save"
    assert events == [("created", before), ("created", during)]  # once each, in order
    assert shell(PENDING.format(name=during), shell_env) == "0"
    # (The server's periodic relay may itself have failed while Redis was down: it tries every
    # 0.5 s and the row is committed before Redis restarts. Once each, in order, is what counts.)


KILLED_AFTER_COMMIT = """
import os, signal
from django.db import transaction
from demo_project.items.models import Item
with transaction.atomic():
    # Registered before the save, so it runs before django_sse's relay hook: the row is
    # committed and the process is gone before anything is published.
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    Item.objects.create(name={name!r}, price="1.00")
"""


def test_an_event_of_a_process_killed_after_its_commit_is_published_by_the_relay_command(
    start: StartServer,
    redis_url: str,
    database: str,
) -> None:
    # No periodic relay in the server: the command is what publishes it here.
    env = environment(redis_url, database, DJANGO_SSE_OUTBOX_RELAY_INTERVAL="0")
    server = start("daphne", env=env)
    name = unique("killed")
    stream = LiveStream(server.url + "/items/live")
    try:
        assert stream.status == 200
        killed = subprocess.run(
            [
                *(sys.executable, "manage.py", "shell", "--no-imports", "-c"),
                KILLED_AFTER_COMMIT.format(name=name),
            ],
            cwd=ROOT,
            env=server_env(env),
            capture_output=True,
            timeout=120,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert shell(PENDING.format(name=name), env) == "1"  # committed, never published
        assert shell("from demo_project.items.models import Item\n"
                     f"print(Item.objects.filter(name={name!r}).count())", env) == "1"  # fmt: skip
        assert manage("sse_relay", env=env).strip() == "default: 1 event(s) published"
        [event] = stream.wait_for(1)
        events = stream.settle(1.0)
    finally:
        stream.close()
    assert (event.type, json.loads(event.data)["name"]) == ("created", name)
    assert len(events) == 1
    assert shell(PENDING.format(name=name), env) == "0"


EVERY_FIELD = """
import datetime
from django.db import transaction
from demo_project.items.models import Item
from tests.support.fieldtypes.models import EveryField
with transaction.atomic():
    Item.objects.create(name={name!r}, price="1.00")
    row = EveryField.objects.create(
        day=datetime.datetime(2024, 5, 6, 23, 30, tzinfo=datetime.UTC),
        file="files/report.pdf",
        image="images/photo.png",
        decimal=5,
    )
print(row.pk, Item.objects.filter(name={name!r}).count())
"""


def test_a_file_field_and_a_date_field_given_a_datetime_save_and_publish(
    start: StartServer,
    redis_url: str,
    database: str,
) -> None:
    env = environment(redis_url, database)
    server = start("uvicorn", env=env)
    stream = LiveStream(server.url + "/test/fieldtypes/live")
    try:
        assert stream.status == 200
        pk, unrelated = shell(EVERY_FIELD.format(name=unique("unrelated")), env).split()
        [event] = stream.wait_for(1)
    finally:
        stream.close()
    payload: dict[str, Any] = json.loads(event.data)
    assert unrelated == "1"  # the atomic block committed, the unrelated row with it
    assert event.type == "created" and payload["id"] == int(pk)
    assert (payload["day"], payload["file"], payload["image"], payload["decimal"]) == (
        "2024-05-06",
        "files/report.pdf",
        "images/photo.png",
        "5.00",
    )
