"""The wire format, rule by rule (WHATWG HTML 9.2), and round trips through a spec parser."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from django_sse import ServerSentEvent
from django_sse.encoding import EncodedEvent, encode_event, encode_item, split_lines
from tests.support.sse_parser import parse

# --- rules -------------------------------------------------------------------------------------


def test_each_payload_line_becomes_a_data_field() -> None:
    assert encode_event(ServerSentEvent(raw_data="a\nb\r\nc\rd")) == (
        b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    )


def test_only_cr_and_lf_split_lines() -> None:
    # VT, FF, FS, GS, RS, NEL, U+2028 and U+2029 are ordinary characters in an event stream.
    text = "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"
    assert split_lines(text) == [text]
    assert encode_event(ServerSentEvent(raw_data=text)) == b"data: " + text.encode() + b"\n\n"


def test_empty_string_is_one_empty_data_field() -> None:
    assert encode_event(ServerSentEvent(raw_data="")) == b"data: \n\n"
    assert encode_event(ServerSentEvent(data="")) == b'data: ""\n\n'


def test_trailing_line_break_keeps_an_empty_last_line() -> None:
    assert encode_event(ServerSentEvent(raw_data="a\n")) == b"data: a\ndata: \n\n"


def test_leading_space_survives_because_one_space_follows_every_colon() -> None:
    encoded = encode_event(ServerSentEvent(raw_data=" indented", event=" e", comment=" c"))
    assert encoded == b":  c\nevent:  e\ndata:  indented\n\n"
    parsed = parse(encoded)
    assert parsed.events[0].data == " indented"
    assert parsed.events[0].type == " e"


def test_comment_lines_are_each_prefixed() -> None:
    assert encode_event(ServerSentEvent(comment="one\ntwo\r\nthree")) == (
        b": one\n: two\n: three\n\n"
    )
    assert encode_event(ServerSentEvent(comment="a\rb")) == b": a\n: b\n\n"


def test_all_fields_in_one_event() -> None:
    event = ServerSentEvent(data={"x": 1}, event="update", id="7", retry=5000, comment="hi")
    assert encode_event(event) == (b': hi\nevent: update\nid: 7\nretry: 5000\ndata: {"x":1}\n\n')


def test_an_event_without_fields_encodes_to_nothing() -> None:
    assert encode_event(ServerSentEvent()) == b""
    assert encode_item(ServerSentEvent()) == b""


def test_empty_id_is_sent_because_it_resets_the_last_event_id() -> None:
    assert encode_event(ServerSentEvent(id="")) == b"id: \n\n"


def test_utf8_without_bom_and_lf_endings() -> None:
    encoded = encode_event(ServerSentEvent(raw_data="héllo ☃", id="ü"))
    assert encoded == "id: ü\ndata: héllo ☃\n\n".encode()
    assert not encoded.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in encoded


def test_json_data_is_one_line_even_with_line_breaks_inside() -> None:
    encoded = encode_event(ServerSentEvent(data={"text": "a\nb\rc\u2028"}))
    assert encoded.count(b"\n") == 2
    assert json.loads(parse(encoded).events[0].data) == {"text": "a\nb\rc\u2028"}


def test_strings_are_json_quoted_raw_data_is_not() -> None:
    assert encode_event(ServerSentEvent(data="hello")) == b'data: "hello"\n\n'
    assert encode_event(ServerSentEvent(raw_data="hello")) == b"data: hello\n\n"


class Item(BaseModel):
    name: str
    price: float


def test_django_and_pydantic_types_are_json_encoded() -> None:
    value = {
        "model": Item(name="Plumbus", price=32.99),
        "when": datetime.datetime(2025, 1, 1, 12, 30, tzinfo=datetime.UTC),
        "day": datetime.date(2025, 1, 2),
        "amount": decimal.Decimal("999.99"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "lazy": gettext_lazy("Hello"),
        "list": [1, 2.5, None, True],
        "nan": float("nan"),
    }
    data = json.loads(parse(encode_event(ServerSentEvent(data=value))).events[0].data)
    assert data == {
        "model": {"name": "Plumbus", "price": 32.99},
        "when": "2025-01-01T12:30:00Z",
        "day": "2025-01-02",
        "amount": "999.99",
        "uuid": "12345678-1234-5678-1234-567812345678",
        "lazy": "Hello",
        "list": [1, 2.5, None, True],
        "nan": None,
    }


def test_unserializable_data_says_which_type() -> None:
    with pytest.raises(Exception, match="object"):
        encode_item(ServerSentEvent(data=object()))


def test_bare_values_become_data() -> None:
    assert encode_item({"a": 1}) == b'data: {"a":1}\n\n'
    assert encode_item("text") == b'data: "text"\n\n'
    assert encode_item(Item(name="n", price=1)) == b'data: {"name":"n","price":1.0}\n\n'
    assert encode_item(None) == b"data: null\n\n"


def test_pre_encoded_events_pass_through() -> None:
    wire = EncodedEvent(b"id: 1\ndata: x\n\n")
    assert encode_item(wire) is wire


# --- properties --------------------------------------------------------------------------------

single_line = st.text().filter(lambda s: "\r" not in s and "\n" not in s)
line_break = st.sampled_from(["\n", "\r", "\r\n"])
any_text = st.lists(st.text() | line_break).map("".join)


def normalized(text: str) -> str:
    """What a client reconstructs from a multi-line value: lines joined with LF."""
    return "\n".join(split_lines(text))


events = st.builds(
    ServerSentEvent,
    raw_data=st.none() | any_text,
    event=st.none() | single_line,
    id=st.none() | single_line.filter(lambda s: "\0" not in s),
    retry=st.none() | st.integers(min_value=0, max_value=2**40),
    comment=st.none() | any_text,
)


@given(events)
def test_any_event_round_trips_through_a_spec_parser(event: ServerSentEvent) -> None:
    encoded = encode_event(event)
    parsed = parse(encoded)
    if event.raw_data is None:
        assert parsed.events == []
    else:
        assert len(parsed.events) == 1
        assert parsed.events[0].data == normalized(event.raw_data)
        assert parsed.events[0].type == (event.event or "message")
    assert parsed.last_event_id == (event.id or "")
    assert parsed.retry == event.retry
    assert parsed.comments == ([] if event.comment is None else split_lines(event.comment))


@given(st.lists(events, max_size=8))
def test_no_input_injects_a_field_or_an_event(batch: list[ServerSentEvent]) -> None:
    stream = b"".join(encode_event(e) for e in batch)
    parsed = parse(stream)
    expected = [normalized(e.raw_data) for e in batch if e.raw_data is not None]
    assert [e.data for e in parsed.events] == expected
    # Every event ends with the blank line that dispatches it: nothing is left unterminated.
    assert stream == b"" or stream.endswith(b"\n\n")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(json_values)
def test_json_data_round_trips(value: object) -> None:
    (event,) = parse(encode_item(value)).events
    assert json.loads(event.data) == value
