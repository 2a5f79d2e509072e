"""A live model event shows the row as a reload shows it, for every built-in field type.

Django does not normalise values on save: an instance saved with ``decimal=5`` still holds
``Decimal("5")``, a ``DateField`` given a ``datetime`` still holds the ``datetime``, an ``F()``
update still holds the expression. The payload is built from the row read back from the
database, so it equals the payload of ``objects.get()`` on SQLite and on PostgreSQL (whose
rounding and ``jsonb`` key order differ from SQLite's).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import models

from tests.support.fieldtypes.models import EveryField, Picky, Related
from tests.support.fieldtypes.scenarios import run
from tests.support.servers import shell

# Not fields a model can use any more (system checks reject them) or not a concrete type.
REMOVED_OR_ABSTRACT = {
    models.Field,
    models.CommaSeparatedIntegerField,
    models.IPAddressField,
    models.NullBooleanField,
}


def check(changes: list[dict[str, Any]]) -> None:
    assert [change["event"] for change in changes] == ["created", "updated", "updated", "deleted"]
    for change in changes:
        assert change["live"] == change["reloaded"], change["event"]
        assert change["live_json"] == change["reloaded_json"], change["event"]  # key order too
    created, updated, generated, deleted = (change["live"] for change in changes)
    assert created["decimal"] == "5.00"  # not "5"
    assert created["char"] == "12345"
    assert created["boolean"] is True
    assert created["integer"] == 42
    assert created["floating"] == 3.0
    assert created["moment"] == "2024-05-06T02:08:09.123456Z"  # given at +05:00
    assert created["day"] == "2024-05-06"  # given a datetime
    assert created["clock"] == "13:14:15.500000"
    assert created["duration"] == "P1DT0.000005S"
    assert created["uuid"] == "12345678-1234-5678-1234-567812345678"
    assert created["ip"] == "2001:db8::1"
    assert created["file"] == "files/report.pdf"  # the stored name, not a URL
    assert created["image"] == "images/photo.png"
    assert created["binary"] == "AP9iaW4="  # base64, as dumpdata writes it
    assert created["json"]["a"] == [1, 2] and created["json"]["3"] == "an int key"
    assert created["generated"] == "12345"
    assert isinstance(created["related_id"], int) and created["related_id"] == created["one_id"]
    assert "many" not in created and "related" not in created
    assert updated["integer"] == 43  # an F() expression in memory
    assert updated["decimal"] in ("2.34", "2.35")  # SQLite rounds half to even, PostgreSQL up
    assert generated["generated"] == "abc"  # computed by the database
    assert deleted == generated


@pytest.mark.django_db(transaction=True)
def test_live_payloads_equal_reloaded_ones_on_sqlite() -> None:
    check(run())


@pytest.mark.server
def test_live_payloads_equal_reloaded_ones_on_postgresql(request: pytest.FixtureRequest) -> None:
    database = request.getfixturevalue("postgres_database")  # migrated once
    code = "\n".join(
        [
            "import json",
            "from tests.support.fieldtypes.scenarios import run",
            "print(json.dumps(run()))",
            "",
        ]
    )
    check(json.loads(shell(code, {"DATABASE_URL": database})))


def test_the_test_models_use_every_built_in_field_type() -> None:
    built_in = {
        value
        for name, value in vars(models).items()
        if name.endswith("Field") and isinstance(value, type) and issubclass(value, models.Field)
    } - REMOVED_OR_ABSTRACT
    used = {type(f) for model in (EveryField, Related, Picky) for f in model._meta.get_fields()}
    assert built_in - used == set()
