"""get_last_event_id: the header, else the lastEventId parameter; bad values count as absent."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from django_sse import get_last_event_id

rf = RequestFactory()


def latin1(value: bytes) -> str:
    """How servers hand header bytes to Django."""
    return value.decode("latin-1")


def test_absent() -> None:
    assert get_last_event_id(rf.get("/")) is None


def test_header() -> None:
    assert get_last_event_id(rf.get("/", HTTP_LAST_EVENT_ID="42")) == "42"


def test_header_utf8_is_decoded() -> None:
    request = rf.get("/", HTTP_LAST_EVENT_ID=latin1("é-1".encode()))
    assert get_last_event_id(request) == "é-1"


def test_query_parameter() -> None:
    assert get_last_event_id(rf.get("/?lastEventId=1700000000000-3")) == "1700000000000-3"


def test_query_parameter_is_percent_decoded() -> None:
    assert get_last_event_id(rf.get("/", QUERY_STRING="lastEventId=a%20b%C3%A9")) == "a bé"


def test_header_wins_over_query_parameter() -> None:
    # A browser's own reconnect sends its newest id in the header; the URL was fixed earlier.
    request = rf.get("/?lastEventId=1", HTTP_LAST_EVENT_ID="5")
    assert get_last_event_id(request) == "5"


def test_invalid_header_falls_back_to_query_parameter() -> None:
    request = rf.get("/?lastEventId=3", HTTP_LAST_EVENT_ID=latin1(b"\xff\xfe"))
    assert get_last_event_id(request) == "3"


@pytest.mark.parametrize(
    "header",
    [
        latin1(b"\xff\xfe"),  # not UTF-8
        "a\rb",
        "a\nb",
        "a\0b",
        "",
        "x" * 1025,
        latin1(("é" * 513).encode()),  # 1026 bytes
    ],
)
def test_bad_header_counts_as_absent(header: str) -> None:
    assert get_last_event_id(rf.get("/", HTTP_LAST_EVENT_ID=header)) is None


def test_exactly_one_kib_is_accepted() -> None:
    assert get_last_event_id(rf.get("/", HTTP_LAST_EVENT_ID="x" * 1024)) == "x" * 1024


@pytest.mark.parametrize(
    "query",
    [
        "lastEventId=%FF%FE",
        "lastEventId=a%0Ab",
        "lastEventId=a%0Db",
        "lastEventId=a%00b",
        "lastEventId=" + "x" * 1025,
        "lastEventId=",
        "lasteventid=1",
    ],
)
def test_bad_query_parameter_counts_as_absent(query: str) -> None:
    assert get_last_event_id(rf.get("/", QUERY_STRING=query)) is None


def test_other_broken_parameters_do_not_matter() -> None:
    assert get_last_event_id(rf.get("/", QUERY_STRING="x=%FF&lastEventId=9")) == "9"
