"""Saves whose in-memory values differ from what the database gives back, for the payload tests.

``run()`` saves, updates and deletes an ``EveryField`` with values Django accepts and does not
normalise on save, and returns, per change, the payload that was published and the payload of
the same object read back with ``objects.get()``. Run in-process (SQLite) and in a shell
(PostgreSQL).
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from django_sse.encoding import json_bytes
from django_sse.live import outbox
from django_sse.live.signals import registration_for
from tests.support.fieldtypes.models import EveryField, Related

PLUS_FIVE = datetime.timezone(datetime.timedelta(hours=5))


def tricky_values(related: Related) -> dict[str, Any]:
    return {
        "boolean": 1,
        "char": 12345,
        "text": "text",
        "slug": "a-slug",
        "email": "someone@example.com",
        "url": "https://example.com/a",
        "integer": "42",
        "small": 3.0,
        "big": 2**62,
        "positive": 7,
        "positive_small": 8,
        "positive_big": 2**63 - 1,
        "floating": 3,
        "decimal": 5,
        "moment": datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=PLUS_FIVE),
        "day": datetime.datetime(2024, 5, 6, 23, 30, tzinfo=datetime.UTC),
        "clock": "13:14:15.5",
        "duration": datetime.timedelta(days=1, microseconds=5),
        "uuid": "12345678123456781234567812345678",
        "ip": "2001:0db8:0000:0000:0000:0000:0000:0001",
        "file_path": "/tmp/x",
        "file": "files/report.pdf",
        "image": "images/photo.png",
        "binary": bytearray(b"\x00\xffbin"),
        "json": {"zz": 1, "a": (1, 2), 3: "an int key", "nested": {"long key": None, "b": 1.5}},
        "nullable": None,
        "related": related,
        "one": related,
    }


def run() -> list[dict[str, Any]]:
    published: list[tuple[str | None, Any]] = []
    original = outbox.publish_events
    outbox.publish_events = lambda events: published.extend(
        (event.event, event.data) for group, event in events if group == "fieldtypes.everyfield"
    )
    registration = registration_for(EveryField)
    reloaded: list[Any] = []
    try:
        related = Related.objects.create()
        item = EveryField.objects.create(**tricky_values(related))
        item.many.add(related)
        reloaded.append(registration.payload(EveryField.objects.get(pk=item.pk)))

        with transaction.atomic():
            item.decimal = decimal.Decimal("2.345")  # more places than the column has
            item.integer = F("integer") + 1
            item.floating = decimal.Decimal("0.1")  # type: ignore[assignment]
            item.day = datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.UTC)
            item.json = [1, {"b": 2, "a": 1}]
            item.save()
        reloaded.append(registration.payload(EveryField.objects.get(pk=item.pk)))

        item.char = "ABC"
        item.save(update_fields=["char"])  # the generated column follows in the database only
        reloaded.append(registration.payload(EveryField.objects.get(pk=item.pk)))

        before_delete = registration.payload(EveryField.objects.get(pk=item.pk))
        item.delete()  # the instance still holds F() and unquantised values
        reloaded.append(before_delete)
    finally:
        outbox.publish_events = original
    return [
        {
            "event": event,
            "live": live,
            "reloaded": again,
            "live_json": json_bytes(live).decode(),
            "reloaded_json": json_bytes(again).decode(),
        }
        for (event, live), again in zip(published, reloaded, strict=True)
    ]
