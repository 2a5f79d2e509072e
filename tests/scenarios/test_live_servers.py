"""Live model updates across real processes: two servers, a shell that saves, Redis in between.

Server A and server B share a database and Redis (channel layer and replay log). Items are saved
by ``manage.py shell -c`` in a third process, exactly as a developer or a task worker would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.live_client import LiveStream
from tests.support.server_kinds import server_kinds
from tests.support.servers import ServerProcess, make_env, shell
from tests.support.waiting import until

pytestmark = pytest.mark.server

PUBSUB = "channels_redis.pubsub.RedisPubSubChannelLayer"
CORE = "channels_redis.core.RedisChannelLayer"


@pytest.fixture
def streams() -> Iterator[list[LiveStream]]:
    opened: list[LiveStream] = []
    yield opened
    for stream in opened:
        stream.close()


def open_stream(opened: list[LiveStream], url: str, last_event_id: str | None = None) -> LiveStream:
    stream = LiveStream(url, last_event_id)
    opened.append(stream)
    assert stream.status == 200
    return stream


def rename_item(pk: int, times: int, env: dict[str, str]) -> None:
    """Rename item ``pk`` to ``missed-0`` … ``missed-<times-1>`` in a shell, saving each time."""
    shell(
        "from demo_project.items.models import Item\n"
        f"item = Item.objects.get(pk={pk})\n"
        f"for n in range({times}):\n"
        "    item.name = f'missed-{n}'\n"
        "    item.save()\n",
        env,
    )


CREATE = """
from demo_project.items.models import Item
print(Item.objects.create(name={name!r}, price="12.50").pk)
"""


@pytest.mark.parametrize("layer", [PUBSUB, CORE], ids=["pubsub", "core"])
def test_a_save_in_a_shell_reaches_a_client_of_another_server(
    start: StartServer,
    redis_url: str,
    database: str,
    layer: str,
    streams: list[LiveStream],
) -> None:
    env = make_env(redis_url, database, layer)
    server_a = start("uvicorn", env=env)
    start("daphne", env=env)  # a second process subscribed to nothing: must not matter
    stream = open_stream(streams, server_a.url + "/items/live")
    name = "shell-" + uuid.uuid4().hex[:8]
    pk = int(shell(CREATE.format(name=name), env).strip())

    [event] = stream.wait_for(1)
    assert event.type == "created"
    assert json.loads(event.data) == {"id": pk, "name": name, "price": "12.50"}
    assert event.last_event_id.count("-") == 1  # a Redis stream id: "<ms>-<seq>"


@pytest.mark.parametrize("layer", [PUBSUB, CORE], ids=["pubsub", "core"])
def test_a_client_that_reconnects_to_the_other_server_gets_exactly_what_it_missed(
    start: StartServer,
    redis_url: str,
    database: str,
    layer: str,
    streams: list[LiveStream],
) -> None:
    env = make_env(redis_url, database, layer)
    server_a = start("daphne", env=env)
    server_b = start("uvicorn", env=env)
    first = open_stream(streams, server_a.url + "/items/live")
    pk = int(shell(CREATE.format(name="before"), env).strip())
    [created] = first.wait_for(1)
    first.close()

    rename_item(pk, 3, env)
    again = open_stream(streams, server_b.url + "/items/live", created.last_event_id)
    missed = again.wait_for(3)
    assert [(e.type, json.loads(e.data)["name"]) for e in missed] == [
        ("updated", "missed-0"),
        ("updated", "missed-1"),
        ("updated", "missed-2"),
    ]
    ids = [created.last_event_id] + [e.last_event_id for e in missed]
    assert len(set(ids)) == 4
    # ... and then the live events, without a duplicate of the replayed ones.
    shell(f"from demo_project.items.models import Item\nItem.objects.filter(pk={pk}).delete()", env)
    events = again.wait_for(4)
    assert events[3].type == "deleted" and json.loads(events[3].data)["id"] == pk
    assert len(again.settle(0.8)) == 4


def test_a_rolled_back_save_publishes_nothing_and_a_commit_publishes_once(
    start: StartServer, redis_url: str, database: str, streams: list[LiveStream]
) -> None:
    env = make_env(redis_url, database)
    server = start("uvicorn", env=env)
    stream = open_stream(streams, server.url + "/items/live")
    shell(
        "from django.db import transaction\n"
        "from demo_project.items.models import Item\n"
        "try:\n"
        "    with transaction.atomic():\n"
        "        Item.objects.create(name='rolled-back', price='1.00')\n"
        "        raise RuntimeError\n"
        "except RuntimeError:\n"
        "    pass\n"
        "with transaction.atomic():\n"
        "    item = Item.objects.create(name='committed', price='2.00')\n"
        "    with transaction.atomic():\n"
        "        inner = Item.objects.create(name='savepoint-rolled-back', price='3.00')\n"
        "        transaction.set_rollback(True)\n",
        env,
    )
    events = stream.settle(1.0)
    assert [(e.type, json.loads(e.data)["name"]) for e in events] == [("created", "committed")]


def test_a_per_object_stream_sees_only_its_object(
    start: StartServer, redis_url: str, server_database: str, streams: list[LiveStream]
) -> None:
    env = make_env(redis_url, server_database)
    server = start("uvicorn", env=env)
    pk = int(shell(CREATE.format(name="mine"), env).strip())
    other = int(shell(CREATE.format(name="other"), env).strip())
    stream = open_stream(streams, f"{server.url}/items/{pk}/live")
    shell(
        "from demo_project.items.models import Item\n"
        f"Item.objects.filter(pk__in=[{pk}, {other}]).update(price='9.99')\n"
        "from django_sse.live.signals import publish_queryset\n"
        f"publish_queryset(Item.objects.filter(pk__in=[{pk}, {other}]))\n",
        env,
    )
    [event] = stream.wait_for(1)
    assert json.loads(event.data) == {"id": pk, "name": "mine", "price": "9.99"}
    assert len(stream.settle(0.8)) == 1


@pytest.mark.parametrize("kind", server_kinds())
def test_live_updates_and_a_resume_by_id_on_every_server(
    start: StartServer, redis_url: str, server_database: str, kind: str, streams: list[LiveStream]
) -> None:
    env = make_env(redis_url, server_database)
    server = start(kind, env=env)
    first = open_stream(streams, server.url + "/items/live")
    pk = int(shell(CREATE.format(name="on-" + kind), env).strip())
    [created] = first.wait_for(1)
    assert json.loads(created.data) == {"id": pk, "name": "on-" + kind, "price": "12.50"}
    first.close()
    rename_item(pk, 2, env)
    again = open_stream(streams, server.url + "/items/live", created.last_event_id)
    missed = again.wait_for(2)
    assert [(e.type, json.loads(e.data)["name"]) for e in missed] == [
        ("updated", "missed-0"),
        ("updated", "missed-1"),
    ]


@pytest.mark.parametrize("kind", server_kinds())
def test_disconnected_clients_leave_the_hub_and_the_last_one_releases_the_group(
    start: StartServer, redis_url: str, server_database: str, kind: str
) -> None:
    server = start(kind, env=make_env(redis_url, server_database))

    def hub() -> dict[str, object]:
        state: dict[str, object] = httpx.get(server.url + "/test/live/hub", timeout=10).json()
        return state

    opened = [LiveStream(server.url + "/items/live") for _ in range(3)]
    try:
        assert hub() == {"groups": {"items.item": 3}, "channels": 1}
    finally:
        for stream in opened:
            stream.close()
    until(lambda: hub() == {"groups": {}, "channels": 0})


def test_refusals_are_plain_error_responses_on_a_real_server(daphne: ServerProcess) -> None:
    with httpx.Client(timeout=10) as client:
        assert client.get(daphne.url + "/test/live/login/item").status_code == 401
        assert client.get(daphne.url + "/test/live/even/3").status_code == 403
        assert client.get(daphne.url + "/test/live/open/a:b").status_code == 400
        with client.stream("GET", daphne.url + "/test/live/even/4") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
