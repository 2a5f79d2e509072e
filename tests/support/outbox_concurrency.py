"""Two relays at once (two connections): one publishes, the other waits (SQLite) or backs off
(row locks, PostgreSQL) and leaves its rows to the next relay: nothing is published twice or
before an older event."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connections

from demo_project.items.models import Item
from django_sse.live import outbox
from django_sse.models import OutboxEvent


def run() -> dict[str, Any]:
    published: list[tuple[str, str]] = []
    original = outbox.publish_events

    def down(events: Any) -> None:
        raise ConnectionError("broker down")

    outbox.publish_events = lambda events: None
    outbox.relay("default")  # the PostgreSQL database outlives runs: start from an empty outbox
    outbox.publish_events = down
    try:
        first = Item.objects.create(name="first", price="1.00")  # stays: the publish failed
        started, release = threading.Event(), threading.Event()

        def slow(events: Any) -> None:
            started.set()
            assert release.wait(30)
            published.extend((group, event.data["name"]) for group, event in events)

        outbox.publish_events = slow
        results: dict[str, Any] = {}

        def first_relay() -> None:
            try:
                results["first"] = outbox.relay_quietly("default")
            finally:
                connections.close_all()

        thread = threading.Thread(target=first_relay)
        thread.start()
        assert started.wait(30)
        # While the first relay publishes (holding its row), another item is saved and its
        # commit relays: that relay must not publish "second" before "first" is out.
        second: dict[str, Any] = {}

        def save_second() -> None:
            try:
                Item.objects.create(name="second", price="2.00")
                second["published before release"] = len(published)
            finally:
                connections.close_all()

        saver = threading.Thread(target=save_second)
        saver.start()
        saver.join(0.5)  # SQLite: waits for the first relay's commit; PostgreSQL: backs off
        waited = saver.is_alive()
        release.set()
        thread.join(30)
        saver.join(30)
        left_after_both = OutboxEvent.objects.count()
        outbox.publish_events = lambda events: published.extend(
            (group, event.data["name"]) for group, event in events
        )
        final = outbox.relay("default")  # what a backed-off relay left: the next relay's
    finally:
        outbox.publish_events = original
    return {
        "vendor": connections["default"].vendor,
        "first": results.get("first"),
        "waited": waited,
        "left_after_both": left_after_both,
        "final": final,
        "published": published,
        "pk": first.pk,
        "left": OutboxEvent.objects.count(),
    }
