"""The resume cursor of multi-group streams: round trips, untrusted input, sealing, size."""

from __future__ import annotations

import base64
import time

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from django_sse.live import cursor
from django_sse.live.cursor import (
    MAX_GROUPS,
    decode,
    decode_varint,
    encode,
    encode_varint,
    group_hash,
    positions_of,
)
from django_sse.live.delivery import PublishedEvent
from django_sse.live.multi import Feed, StreamIds

GROUPS = [f"app.model.{n}" for n in range(MAX_GROUPS)]
parts = st.integers(min_value=0, max_value=2**64 - 1)
positions = st.dictionaries(
    st.sampled_from(GROUPS), st.tuples(parts, parts), min_size=1, max_size=MAX_GROUPS
)


@given(st.integers(0, 2**64 - 1), st.integers(1, 10))
def test_varints_round_trip_with_any_padding(value: int, minimum: int) -> None:
    data = encode_varint(value, minimum)
    assert len(data) >= minimum
    assert decode_varint(data, 0) == (value, len(data))


def test_varints_cut_short_or_over_64_bits_are_refused() -> None:
    assert decode_varint(b"\x80\x80", 0) is None
    assert decode_varint(encode_varint(2**64), 0) is None
    assert decode_varint(b"", 0) is None


@given(positions, st.booleans())
def test_positions_round_trip_plain_and_sealed(
    found: dict[str, tuple[int, int]], sealed: bool
) -> None:
    text = encode(found, sealed=sealed)
    assert text.startswith("1s" if sealed else "1p")
    assert set(text[2:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert positions_of(text, GROUPS) == (found, True)
    assert positions_of("0,3:" + text, GROUPS) == (found, True)  # a whole id reads the same


def test_only_the_groups_asked_for_are_positioned() -> None:
    text = encode({"a": (1, 2), "b": (3, 4)})
    assert positions_of(text, ["b", "c"]) == ({"b": (3, 4)}, True)
    assert positions_of(text, []) == ({}, True)


@settings(max_examples=300)
@given(st.text(max_size=1200))
def test_any_text_decodes_to_positions_or_none_never_an_error(text: str) -> None:
    found, _ = positions_of(text, GROUPS)
    assert set(found) <= set(GROUPS)


def tamper(text: str, index: int, change: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(text[2:] + "=" * (-len(text[2:]) % 4)))
    raw[index % len(raw)] ^= change
    return text[:2] + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


@settings(max_examples=200)
@given(positions, st.booleans(), st.integers(0, 10**6), st.integers(1, 255))
def test_a_changed_byte_never_reads_back_as_the_same_positions(
    found: dict[str, tuple[int, int]], sealed: bool, index: int, change: int
) -> None:
    text = encode(found, sealed=sealed)
    tampered = tamper(text, index, change)
    if sealed:
        assert decode(tampered) is None  # an 8-byte key-bound tag
    else:
        # A 16-bit check per entry: a change is caught, or (one in 65,536) reads as another
        # position of the group, which the log then checks; never as the original.
        assert decode(tampered) != decode(text)


def test_a_damaged_plain_entry_costs_only_its_own_group() -> None:
    found = {"a": (1, 2), "b": (3, 4), "c": (5, 6)}
    text = encode(found)
    entry_bytes = len(base64.urlsafe_b64decode(text[2:])) // 3
    damaged = tamper(text, entry_bytes + 5, 0x01)  # inside b's epoch
    assert positions_of(damaged, ["a", "b", "c"]) == ({"a": (1, 2), "c": (5, 6)}, False)
    padded = tamper(text, 3 * entry_bytes - 1, 0x01)  # c's padding: not zero any more
    assert positions_of(padded, ["a", "b", "c"]) == ({"a": (1, 2), "b": (3, 4)}, False)


def test_a_sealed_cursor_hides_how_many_events_came_before() -> None:
    epoch = time.time_ns() // 1000
    few = encode({"g": (epoch, 3)}, sealed=True)
    many = encode({"g": (epoch, 3_000_000_000)}, sealed=True)
    assert len(few) == len(many)
    assert encode({"g": (epoch, 3)}, sealed=True) != few  # a fresh nonce every time
    assert positions_of(few, ["g"]) == ({"g": (epoch, 3)}, True)


def test_a_sealed_cursor_depends_on_the_secret_key() -> None:
    text = encode({"g": (1, 2)}, sealed=True)
    with override_settings(SECRET_KEY="another secret"):
        assert decode(text) is None
    assert decode(text) is not None


def test_unknown_versions_and_oversized_input_are_refused() -> None:
    text = encode({"g": (1, 2)})
    assert decode("2p" + text[2:]) is None
    assert decode(text + "A" * cursor.MAX_CURSOR_CHARS) is None


def test_groups_with_the_same_hash_are_both_left_unpositioned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = encode({"x": (1, 1)})
    monkeypatch.setattr(cursor, "group_hash", lambda group: group_hash("x"))
    assert positions_of(text, ["x", "y"]) == ({}, True)


def id_length(groups: int, sealed: bool, feeds: int) -> int:
    """Longest ``<feeds>:<cursor>`` of ``groups`` positions (docs/topics/feeds-and-tabs.md)."""
    epoch = time.time_ns() // 1000  # epochs are microseconds since 1970
    found = {f"app.model.{n}": (epoch - n * 86_400_000_000, 10**7 + n) for n in range(groups)}
    routing = ",".join(str(n) for n in range(feeds))
    return len(routing + ":" + encode(found, sealed=sealed))


def test_an_id_of_max_groups_stays_under_the_last_event_id_limit() -> None:
    # Every group of every feed, ten million events each: the longest id a stream can send.
    assert id_length(MAX_GROUPS, sealed=True, feeds=16) < 1024
    assert id_length(MAX_GROUPS, sealed=False, feeds=16) < 1024
    print(
        "\nid lengths (plain/sealed):",
        {n: (id_length(n, False, min(n, 16)), id_length(n, True, min(n, 16))) for n in (1, 10, 32)},
    )


def test_streams_sharing_a_groups_entries_each_write_their_own_positions() -> None:
    # Every stream of a process encodes a group's entries with one shared Entries (entries_of),
    # which keeps the last one: a stream replaying older events, or another epoch, interleaved
    # with a live one, must still get its own positions.
    groups = ["shared.a", "shared.b"]
    live, behind = (StreamIds([Feed((group,)) for group in groups], groups) for _ in range(2))

    def delivery(group: str, key: str) -> PublishedEvent:
        return PublishedEvent(group=group, id=key, wire=f"data: 1\nid: {key}\n\n".encode())

    for stream, group, key in [
        (live, "shared.a", "7-5"),
        (behind, "shared.a", "7-3"),
        (live, "shared.b", "9-1"),
        (behind, "shared.b", "8-4"),
        (behind, "shared.a", "7-4"),
    ]:
        assert stream.event(group, delivery(group, key)) is not None
    hashes = {group_hash(group): group for group in groups}
    for stream, want in [
        (live, {"shared.a": (7, 5), "shared.b": (9, 1)}),
        (behind, {"shared.a": (7, 4), "shared.b": (8, 4)}),
    ]:
        positions = decode(stream.cursor().decode())
        assert positions is not None
        assert {hashes[key]: position for key, position in positions.items()} == want
