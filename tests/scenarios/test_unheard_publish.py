"""A publish on the in-memory layer from a process that serves no streams says it reached nobody.

``manage.py shell`` (or a management command, or a task worker) on the default in-memory layer
gets ids back and reaches no server: logged once per process, with the fix, under ``DEBUG``. A
server that publishes with nobody subscribed yet is fine and says nothing.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from django_sse import subscribe
from django_sse.live.hub import get_hub
from django_sse.live.serving import UNHEARD_PUBLISH, ProcessRole
from tests.conftest import StartServer
from tests.support.servers import ROOT, server_env
from tests.support.waiting import until_async

pytestmark = pytest.mark.server

PUBLISH_TWICE = """
from django_sse import publish_sync
print(publish_sync("scores", {"n": 1}))
print(publish_sync("scores", {"n": 2}))
"""

SAVE_TWICE = """
from demo_project.items.models import Item
Item.objects.create(name="from a shell", price="1.00")
Item.objects.create(name="from a shell", price="2.00")
"""


def shell(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py shell -c code`` in a process of its own; its stdout and stderr."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_shell_publishing_on_the_in_memory_layer_is_told_once_with_the_fix(
    server_database: str,
) -> None:
    result = shell(PUBLISH_TWICE, {"DATABASE_URL": server_database, "DJANGO_DEBUG": "1"})
    assert len(result.stdout.split()) == 2  # both publishes returned ids, as before
    assert result.stderr.count(UNHEARD_PUBLISH) == 1, result.stderr
    assert "CHANNEL_LAYERS" in UNHEARD_PUBLISH and "channels_redis" in UNHEARD_PUBLISH


def test_model_saves_in_a_shell_are_told_too(server_database: str) -> None:
    result = shell(SAVE_TWICE, {"DATABASE_URL": server_database, "DJANGO_DEBUG": "1"})
    assert result.stderr.count(UNHEARD_PUBLISH) == 1, result.stderr


def test_nothing_is_said_with_debug_off(server_database: str) -> None:
    # Production is the system check's job (django_sse.W004), and test suites run with DEBUG off.
    result = shell(PUBLISH_TWICE, {"DATABASE_URL": server_database, "DJANGO_DEBUG": "0"})
    assert UNHEARD_PUBLISH not in result.stderr


def test_nothing_is_said_on_a_shared_layer(server_database: str, redis_url: str) -> None:
    env = {
        "DATABASE_URL": server_database,
        "DJANGO_DEBUG": "1",
        "REDIS_URL": redis_url,
        "DJANGO_SSE_KEY_PREFIX": "t" + uuid.uuid4().hex[:12],
    }
    result = shell(PUBLISH_TWICE, env)
    assert len(result.stdout.split()) == 2
    assert UNHEARD_PUBLISH not in result.stderr


def test_a_server_publishing_before_anyone_subscribed_says_nothing(
    start: StartServer,
) -> None:
    # The demo's form: a sync view whose save publishes (on commit, through publish_many_sync)
    # in a Daphne process with DEBUG on that has no subscriber at all.
    server = start("daphne", env={"DJANGO_DEBUG": "1"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        name = "posted-" + uuid.uuid4().hex[:8]
        response = client.post(
            "/", data={"name": name, "price": "3.50", "csrfmiddlewaretoken": token.group(1)}
        )
        assert response.status_code == 302
        # The save was published in the server: the page now resumes from an event id.
        assert '"lastEventId"' in client.get("/").text
    assert UNHEARD_PUBLISH not in server.log()


async def test_a_process_whose_hub_has_subscribers_says_nothing(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # In-process: an embedded server or a test that subscribed, on the in-memory layer.
    settings.DEBUG = True
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    role = ProcessRole()
    async with subscribe("unheard.check") as subscription:
        await subscription.open()
        await asyncio.to_thread(role.warn_if_unheard)  # as publish_sync from a worker thread
        assert UNHEARD_PUBLISH not in caplog.text
    # The last subscriber left: once the hub let its channel go, nobody listens here.
    await until_async(lambda: get_hub().channel is None)
    await asyncio.to_thread(role.warn_if_unheard)
    assert caplog.text.count(UNHEARD_PUBLISH) == 1
