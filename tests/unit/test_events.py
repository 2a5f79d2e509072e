"""ServerSentEvent validation: FastAPI's rules, with messages that say what to do."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from django_sse import ServerSentEvent


def test_data_and_raw_data_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="mutually exclusive"):
        ServerSentEvent(data={"a": 1}, raw_data="a")


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\nb", "\n"])
def test_event_must_be_single_line(value: str) -> None:
    with pytest.raises(ValidationError, match="event must be a single line"):
        ServerSentEvent(event=value, data=1)


@pytest.mark.parametrize("value", ["1\n2", "1\r2", "\r\n"])
def test_id_must_be_single_line(value: str) -> None:
    with pytest.raises(ValidationError, match="id must be a single line"):
        ServerSentEvent(id=value, data=1)


def test_id_must_not_contain_nul() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        ServerSentEvent(id="a\0b", data=1)


@pytest.mark.parametrize("value", [-1, 1.5, "100", True])
def test_retry_is_a_non_negative_int(value: object) -> None:
    with pytest.raises(ValidationError, match="retry"):
        ServerSentEvent(retry=value, data=1)  # type: ignore[arg-type]


def test_retry_zero_is_allowed() -> None:
    assert ServerSentEvent(retry=0).retry == 0


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ServerSentEvent(date=1)  # type: ignore[call-arg]


def test_events_are_immutable() -> None:
    event = ServerSentEvent(data=1)
    with pytest.raises(ValidationError, match="frozen"):
        event.id = "2"


def test_multiline_data_comment_and_unicode_separators_are_allowed() -> None:
    event = ServerSentEvent(raw_data="a\nb", comment="x\ry", event="a\u2028b", id="\x0b")
    assert event.raw_data == "a\nb"
