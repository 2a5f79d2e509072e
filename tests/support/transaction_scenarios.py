"""Transaction shapes a Django project really uses, run in-process and in ``manage.py shell``.

Every item is named for what must happen to its events: ``keep-*`` ones are published once the
outermost transaction commits, ``drop-*`` ones never. ``EXPECTED`` is what the model group
``items.item`` must see, in this order, each exactly once.
"""

from __future__ import annotations

from contextlib import suppress

from django.db import transaction

from demo_project.items.models import Item


class Rollback(Exception):
    pass


def create(name: str) -> Item:
    return Item.objects.create(name=name, price="1.00")


def run() -> None:
    # A plain rollback, by exception and by set_rollback().
    with suppress(Rollback), transaction.atomic():
        create("drop-rollback")
        raise Rollback
    with transaction.atomic():
        create("drop-set-rollback")
        transaction.set_rollback(True)

    with transaction.atomic():
        create("keep-commit")

    # An inner savepoint rolled back: only its own save is dropped.
    with transaction.atomic():
        create("keep-outer")
        with suppress(Rollback), transaction.atomic():
            create("drop-inner")
            raise Rollback
        create("keep-after-inner")

    # An inner block that succeeded, inside an outer one that rolled back: nothing at all.
    with suppress(Rollback), transaction.atomic():
        with transaction.atomic():
            create("drop-inner-released")
        create("drop-outer")
        raise Rollback

    # Three levels: rolling back the middle one takes the innermost with it.
    with transaction.atomic():
        create("keep-top")
        with suppress(Rollback), transaction.atomic():
            with transaction.atomic():
                create("drop-innermost")
            raise Rollback

    # A savepoint by hand, released. (One rolled back by hand is a Django limitation: see
    # test_transactions.test_a_manual_savepoint_rollback_does_not_discard_the_event.)
    with transaction.atomic():
        # Django 6.1 renamed savepoint() to savepoint_create() and deprecated the old name.
        savepoint = (getattr(transaction, "savepoint_create", None) or transaction.savepoint)()
        create("keep-manual")
        transaction.savepoint_commit(savepoint)

    # Several changes to one row in one transaction: each is published, in order, once.
    with transaction.atomic():
        item = create("keep-changes")
        item.price = "2.00"
        item.save()
        item.delete()

    with transaction.atomic(durable=True):
        create("keep-durable")

    create("keep-autocommit")  # no transaction: published at once


EXPECTED = [
    ("created", "keep-commit"),
    ("created", "keep-outer"),
    ("created", "keep-after-inner"),
    ("created", "keep-top"),
    ("created", "keep-manual"),
    ("created", "keep-changes"),
    ("updated", "keep-changes"),
    ("deleted", "keep-changes"),
    ("created", "keep-durable"),
    ("created", "keep-autocommit"),
]
