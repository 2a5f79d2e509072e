"""The outbox in one process: written in the saving transaction, relayed after the commit.

Publishing is replaced by a recorder (or by a broker that is down) at ``outbox.publish_events``,
the one place model events reach the channel layer. Real processes, a real Redis that goes down
and a process killed after its commit: tests/scenarios/test_outbox_processes.py.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from demo_project.items.models import Item
from django_sse.live import outbox
from django_sse.live.signals import publish_instances
from django_sse.models import OutboxEvent
from tests.support.fieldtypes.models import EveryField, Picky
from tests.support.servers import shell

pytestmark = pytest.mark.django_db(transaction=True)

Published = list[tuple[str, str, Any]]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    sent: Published = []

    def record(events: list[tuple[str, Any]]) -> None:
        sent.extend((group, event.event, event.data) for group, event in events)

    monkeypatch.setattr(outbox, "publish_events", record)
    return sent


def broker_down(events: object) -> None:
    raise ConnectionError("the channel layer is unreachable")


def names(published: Published, group: str = "items.item") -> list[str]:
    return [data["name"] for g, _, data in published if g == group]


def test_events_wait_in_the_outbox_until_the_commit(published: Published) -> None:
    with transaction.atomic():
        item = Item.objects.create(name="a", price=1)
        [row] = OutboxEvent.objects.all()  # written in this transaction
        assert row.groups == f"items.item items.item.{item.pk}"
        assert row.event == "created"
        assert json.loads(row.data) == {"id": item.pk, "name": "a", "price": "1.00"}
        assert published == []
    assert [(g, kind) for g, kind, _ in published] == [
        ("items.item", "created"),
        (f"items.item.{item.pk}", "created"),
    ]
    assert not OutboxEvent.objects.exists()  # deleted once published


def test_a_rollback_takes_the_outbox_rows_with_it(published: Published) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Item.objects.create(name="gone", price=1)
        raise RuntimeError
    assert not OutboxEvent.objects.exists()
    assert published == []


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "autocommit"])
def test_a_failed_publish_leaves_the_events_for_the_next_commit(
    monkeypatch: pytest.MonkeyPatch,
    published: Published,
    caplog: pytest.LogCaptureFixture,
    atomic: bool,
) -> None:
    record = outbox.publish_events
    monkeypatch.setattr(outbox, "publish_events", broker_down)
    with caplog.at_level(logging.WARNING, logger="django_sse"):
        Item.objects.create(name="during the outage", price=1)  # returns normally
    assert OutboxEvent.objects.count() == 1
    assert "stay in the outbox" in caplog.text
    monkeypatch.setattr(outbox, "publish_events", record)
    with transaction.atomic(durable=True) if atomic else contextlib.nullcontext():
        Item.objects.create(name="after it", price=1)
    # The older event first: a group sees its events in the order they were committed.
    assert names(published) == ["during the outage", "after it"]
    assert not OutboxEvent.objects.exists()


def test_the_relay_command_publishes_what_is_left(
    monkeypatch: pytest.MonkeyPatch, published: Published
) -> None:
    record = outbox.publish_events
    monkeypatch.setattr(outbox, "publish_events", broker_down)
    for n in range(3):
        Item.objects.create(name=f"left-{n}", price=1)
    with pytest.raises(CommandError, match="stay in the outbox"):
        call_command("sse_relay")
    assert OutboxEvent.objects.count() == 3
    monkeypatch.setattr(outbox, "publish_events", record)
    call_command("sse_relay")
    assert names(published) == ["left-0", "left-1", "left-2"]
    assert not OutboxEvent.objects.exists()


def test_relays_go_on_until_a_backlog_is_out(
    monkeypatch: pytest.MonkeyPatch, published: Published
) -> None:
    record = outbox.publish_events
    items = Item.objects.bulk_create([Item(name=f"n{i}", price=i) for i in range(250)])
    monkeypatch.setattr(outbox, "publish_events", broker_down)
    publish_instances(items, "created")
    monkeypatch.setattr(outbox, "publish_events", record)
    assert OutboxEvent.objects.count() == 250
    assert outbox.relay("default") == 250  # batches of 100, in id order
    assert names(published) == [f"n{i}" for i in range(250)]


def test_without_the_outbox_a_failed_publish_is_lost(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DJANGO_SSE = {**settings.DJANGO_SSE, "OUTBOX": False}
    monkeypatch.setattr(outbox, "publish_events", broker_down)
    with caplog.at_level(logging.ERROR, logger="django.db.backends.base"):
        Item.objects.create(name="lost", price=1)
    assert not OutboxEvent.objects.exists()
    assert "on_commit" in caplog.text  # robust on_commit logged it: that is all


def test_nothing_of_django_sse_rolls_back_an_atomic_block(
    published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="django_sse"), transaction.atomic():
        Item.objects.create(name="unrelated", price=1)
        # A DateField given a datetime (Django accepts it) and a FileField used to raise here.
        dated = EveryField.objects.create(
            day=datetime.datetime(2024, 5, 6, 7, 8, tzinfo=datetime.UTC), file="files/a.pdf"
        )
        Picky.objects.create(name="bad")  # its custom schema raises: logged, not published
        Picky.objects.create(name="good")
    assert Item.objects.filter(name="unrelated").exists()
    assert Picky.objects.count() == 2
    [(_, kind, payload)] = [p for p in published if p[0] == "fieldtypes.everyfield"]
    assert (kind, payload["id"], payload["day"], payload["file"]) == (
        "created",
        dated.pk,
        "2024-05-06",
        "files/a.pdf",
    )
    assert [data["name"] for g, _, data in published if g == "fieldtypes.picky"] == ["good"]
    assert "Could not build the 'created' event of fieldtypes.Picky" in caplog.text


def test_a_database_without_the_outbox_table_falls_back_to_on_commit(
    settings: Any, published: Published, caplog: pytest.LogCaptureFixture
) -> None:
    with connection.schema_editor() as editor:
        editor.delete_model(OutboxEvent)
    try:
        settings.DJANGO_SSE = {**settings.DJANGO_SSE}  # forget what was known of the table
        with caplog.at_level(logging.ERROR, logger="django_sse"), transaction.atomic():
            Item.objects.create(name="no table", price=1)
        assert names(published) == ["no table"]
        assert "outbox table is missing" in caplog.text
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(OutboxEvent)


CONCURRENT = "\n".join(
    [
        "import json",
        "from tests.support.outbox_concurrency import run",
        "print(json.dumps(run()))",
        "",
    ]
)


@pytest.mark.server
@pytest.mark.django_db(transaction=False)
def test_two_relays_at_once_publish_each_event_once_and_in_order(database: str) -> None:
    result = json.loads(shell(CONCURRENT, {"DATABASE_URL": database}))
    pk = result["pk"]
    assert result["published"] == [
        ["items.item", "first"],
        ["items.item." + str(pk), "first"],
        ["items.item", "second"],
        ["items.item." + str(pk + 1), "second"],
    ]
    assert result["first"] == 1 and result["left"] == 0
    if result["vendor"] == "sqlite":
        # One writer at a time: the second commit waited for the relay, then relayed its own.
        assert result["waited"] and result["left_after_both"] == 0
    else:
        # Row locks: the second relay saw an older row held by the first and backed off.
        assert not result["waited"] and result["left_after_both"] == 1 and result["final"] == 1
