"""Model events and transactions: rollback publishes nothing, a commit publishes exactly once.

The scenarios (tests/transaction_scenarios.py) cover rollbacks, nested atomic blocks, savepoints
rolled back or released, manual savepoints, several changes to one row and autocommit. They run
here in-process on SQLite, in ``manage.py shell`` on SQLite and PostgreSQL, and end to end
through Redis to a client of a real server on both databases.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction

from demo_project.items.models import Item
from django_sse import signals
from tests.conftest import StartServer
from tests.live_client import LiveStream
from tests.test_live_servers import make_env, postgres_database, shell
from tests.transaction_scenarios import EXPECTED, run

# (group, event type, item name, published inside an atomic block?)
Published = list[tuple[str, str, str, bool]]


def recorder(sent: Published) -> Any:
    def record(events: list[tuple[str, Any]]) -> None:
        inside = transaction.get_connection().in_atomic_block
        for group, event in events:
            sent.append((group, event.event, event.data.name, inside))

    return record


def check(published: Published) -> None:
    model_group = [(kind, name) for group, kind, name, _ in published if group == "items.item"]
    assert model_group == EXPECTED
    object_groups = [(kind, name) for group, kind, name, _ in published if group != "items.item"]
    assert object_groups == EXPECTED  # each to its own "items.item.<pk>" group, once
    assert not any(inside for *_, inside in published)  # always after the commit


@pytest.mark.django_db(transaction=True)
def test_scenarios_in_process_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    published: Published = []
    monkeypatch.setattr(signals, "publish_many_sync", recorder(published))
    run()
    check(published)
    assert not Item.objects.filter(name__startswith="drop-").exists()


@pytest.mark.django_db(transaction=True)
def test_a_failing_publish_does_not_undo_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    def broker_down(events: object) -> None:
        raise ConnectionError("the channel layer is unreachable")

    monkeypatch.setattr(signals, "publish_many_sync", broker_down)
    with transaction.atomic():
        Item.objects.create(name="saved-anyway", price="1.00")
    assert Item.objects.filter(name="saved-anyway").exists()


@pytest.mark.django_db(transaction=True)
def test_a_manual_savepoint_rollback_does_not_discard_the_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A known limit, inherited from Django: pinned here so that the README stays true.

    ``on_commit`` forgets callbacks only for savepoints made by ``atomic()``; a save undone with
    ``transaction.savepoint_rollback()`` is still published at commit. Use a nested ``atomic()``.
    """
    published: Published = []
    monkeypatch.setattr(signals, "publish_many_sync", recorder(published))
    with transaction.atomic():
        # Django 6.1 renamed savepoint() to savepoint_create() and deprecated the old name.
        create = getattr(transaction, "savepoint_create", None) or transaction.savepoint
        savepoint = create()
        Item.objects.create(name="undone-by-hand", price="1.00")
        transaction.savepoint_rollback(savepoint)
    assert not Item.objects.filter(name="undone-by-hand").exists()
    assert [name for group, _, name, _ in published if group == "items.item"] == ["undone-by-hand"]


RECORDED = """
import json
from django.db import transaction
from django_sse import signals
from tests.transaction_scenarios import run
sent = []
def record(events):
    inside = transaction.get_connection().in_atomic_block
    sent.extend((group, event.event, event.data.name, inside) for group, event in events)
signals.publish_many_sync = record
run()
print(json.dumps(sent))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, server_database: str) -> str:
    if request.param == "sqlite":
        return server_database
    url: str = request.getfixturevalue(postgres_database.__name__)  # migrated once
    return url


def test_scenarios_in_a_shell(database: str) -> None:
    output = shell(RECORDED, {"DATABASE_URL": database})
    check([tuple(row) for row in json.loads(output)])  # type: ignore[misc]


def test_scenarios_reach_a_client_of_a_real_server_exactly_as_committed(
    start: StartServer, redis_url: str, database: str
) -> None:
    env = make_env(redis_url, database)
    server = start("uvicorn", env=env)
    stream = LiveStream(server.url + "/items/live")
    try:
        assert stream.status == 200
        shell("from tests.transaction_scenarios import run\nrun()\n", env)
        stream.wait_for(len(EXPECTED))
        events = stream.settle(1.0)
    finally:
        stream.close()
    assert [(e.type, json.loads(e.data)["name"]) for e in events] == EXPECTED
    assert len({e.last_event_id for e in events}) == len(EXPECTED)
