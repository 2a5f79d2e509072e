"""Resume cursors: the position of every group of a multi-group stream, in one event id.

A stream of several groups (``subscribe([...])``, a ``SubscriptionView`` with several groups,
combined feeds) sends each event with the id ``<feeds>:<cursor>`` (see multi.py); the cursor is
what the browser sends back as ``Last-Event-ID``. It holds, for each group, the last event the
stream wrote of it, keyed by a short hash of the group's name (not by its place in the URL), so
a reconnect with a different set of groups still finds its own. Layout (version 1)::

    "1p" base64url(entry) base64url(entry) ...          plain: no feed filters its events
    "1s" base64url( nonce || sealed entries || tag )    sealed: some feed filters its events
    plain entry  = group hash (4) || varint epoch || varint sequence || check (2) || 0-2 zeros
    sealed entry = group hash (4) || varint epoch || varint sequence (padded to 6 bytes)

A plain entry carries a check of its own (16 bits of CRC-32) and is padded to a multiple of 3
bytes, so that its base64 text is a unit: a stream keeps each group's text and joins them per
event (no hashing or encoding of the whole cursor for every event), and an entry damaged in
transit costs only its own group (multi.py resets it). A plain cursor tells the client nothing
that today's single-group ids do not. A sealed cursor is encrypted and authenticated as a whole
with a key derived from ``SECRET_KEY`` (as tokens.py does): a filtered subscriber must not
learn how many events it was not shown, so its sequences are padded too.

Cursors are untrusted input. ``read`` returns ``None`` for anything that is not a cursor, and
the positions it finds only for the groups the URL names: an entry for any other group is
ignored, so a cursor can never add a group. A position that verifies may still be wrong for the
group's log (another epoch, a sequence in the future): the log's checks make that a ``reset``.
docs/topics/feeds-and-tabs.md has the measured lengths: under 1 KiB at ``MAX_GROUPS``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.crypto import salted_hmac

from .delivery import EventKey

# At most this many groups in one multi-group stream (subscribe() raises beyond it).
MAX_GROUPS = 32
PLAIN = "1p"
SEALED = "1s"
HASH_BYTES = 4
CHECK_BYTES = 2
NONCE_BYTES = 12
TAG_BYTES = 8
SEALED_SEQUENCE_BYTES = 6  # varint bytes: sequences below 2**42 all look alike
# Refuse to parse more than this: a real cursor is well under 1 KiB.
MAX_CURSOR_CHARS = 1024
_MAX_PART = 2**64 - 1


@lru_cache(maxsize=4096)
def group_hash(group: str) -> bytes:
    """The short key of ``group`` inside a cursor."""
    return hashlib.blake2b(group.encode(), digest_size=HASH_BYTES).digest()


def encode_varint(value: int, minimum: int = 1) -> bytes:
    """LEB128, padded with continuation bytes to at least ``minimum`` bytes."""
    if value < 0x80 and minimum <= 1:
        return bytes((value,))
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value or len(out) + 1 < minimum:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, start: int) -> tuple[int, int] | None:
    """The varint at ``start`` and the index after it; ``None`` if cut short or over 64 bits."""
    value = shift = 0
    for index in range(start, min(len(data), start + 10)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value, index + 1) if value <= _MAX_PART else None
        shift += 7
    return None


def _check(data: bytes) -> bytes:
    return (zlib.crc32(data) & 0xFFFF).to_bytes(CHECK_BYTES, "big")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Entries:
    """The cursor entries of one group, as a stream writes them, one per event.

    The group's hash and the varint of its epoch are kept (the epoch changes only when the log
    forgets the group); a plain entry is kept as base64 text, ready to be joined. The last entry
    is kept too: ``entries_of`` shares one ``Entries`` per group among the process's streams,
    which all write each live event in turn, so its entry is encoded once, not once per stream.
    Each memo is one tuple, replaced whole: a reader never pairs one epoch with another's
    prefix, or one position with another's text, whichever thread wrote it last.
    """

    __slots__ = ("_last", "_prefix", "group", "sealed")

    def __init__(self, group: str, sealed: bool) -> None:
        self.group = group
        self.sealed = sealed
        self._prefix: tuple[int, bytes] = (-1, b"")  # (epoch, hash || varint epoch)
        self._last: tuple[EventKey, bytes] = ((-1, -1), b"")  # (position, its entry)

    def encode(self, position: EventKey) -> bytes:
        """The sealed entry, or the plain entry as base64 text (ASCII bytes, ready to join)."""
        last, text = self._last
        if position == last:
            return text
        text = self._encode(position)
        self._last = (position, text)
        return text

    def _encode(self, position: EventKey) -> bytes:
        epoch, sequence = position
        known, prefix = self._prefix
        if epoch != known:
            prefix = group_hash(self.group) + encode_varint(epoch)
            self._prefix = (epoch, prefix)
        if self.sealed:
            return prefix + encode_varint(sequence, SEALED_SEQUENCE_BYTES)
        entry = prefix + encode_varint(sequence)
        entry += _check(entry) + _PADDING[len(entry) % 3]
        return binascii.b2a_base64(entry, newline=False).translate(_URLSAFE)


@lru_cache(maxsize=4096)
def entries_of(group: str, sealed: bool) -> Entries:
    """The process's one ``Entries`` of ``group`` (plain or sealed), shared by its streams."""
    return Entries(group, sealed)


# Zeros that make a plain entry (with its 2 check bytes) a multiple of 3 bytes long.
_PADDING = (b"\0", b"", b"\0\0")
_URLSAFE = bytes.maketrans(b"+/", b"-_")


_keys: dict[str, bytes] = {}


def _key() -> bytes:
    # Derived once per SECRET_KEY: the keystream and the tag then cost two C calls per event.
    secret = settings.SECRET_KEY
    key = _keys.get(secret)
    if key is None:
        key = _keys[secret] = salted_hmac(
            "django_sse.live.cursor", b"key", algorithm="sha256"
        ).digest()
    return key


def _keystream(nonce: bytes, size: int) -> bytes:
    return hashlib.shake_256(_key() + nonce).digest(size)


def _tag(data: bytes) -> bytes:
    return hashlib.blake2b(data, key=_key(), digest_size=TAG_BYTES).digest()


def _xor(data: bytes, pad: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")


def join(entries: Iterable[bytes], sealed: bool) -> bytes:
    """The cursor of these entries (from ``Entries.encode``, all of one kind), as ASCII bytes."""
    if not sealed:
        return b"1p" + b"".join(entries)
    body = b"".join(entries)
    nonce = os.urandom(NONCE_BYTES)
    cipher = nonce + _xor(body, _keystream(nonce, len(body)))
    return b"1s" + _b64(cipher + _tag(cipher)).encode()


def encode(positions: Mapping[str, EventKey], sealed: bool = False) -> str:
    """The cursor of ``positions`` (group -> (epoch, sequence))."""
    return join((Entries(g, sealed).encode(p) for g, p in positions.items()), sealed).decode()


@dataclass
class Reading:
    """What a cursor says: positions by group hash, and whether every entry verified."""

    positions: dict[bytes, EventKey]
    intact: bool = True


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _parse(body: bytes, plain: bool) -> Reading:
    reading = Reading({})
    index = 0
    while index < len(body):
        start = index
        key = body[index : index + HASH_BYTES]
        epoch = decode_varint(body, index + HASH_BYTES)
        sequence = decode_varint(body, epoch[1]) if epoch is not None else None
        if len(key) < HASH_BYTES or epoch is None or sequence is None:
            reading.intact = False
            return reading
        index = sequence[1]
        if plain:
            check, index = body[index : index + CHECK_BYTES], index + CHECK_BYTES
            pad = -(index - start) % 3
            padding, index = body[index : index + pad], index + pad
            if check != _check(body[start : sequence[1]]) or any(padding):
                # Damaged: the entries after it may be out of step too, and this one's group
                # is unknown. What still verifies is kept; the rest is for the caller to reset.
                reading.intact = False
                continue
        reading.positions[key] = (epoch[0], sequence[0])
    return reading


def read(cursor: str) -> Reading | None:
    """What ``cursor`` (or a whole ``<feeds>:<cursor>`` id) holds; ``None``: not a cursor."""
    text = cursor.rpartition(":")[2]
    if len(text) > MAX_CURSOR_CHARS or len(text) < 2:
        return None
    kind, raw = text[:2], _unb64(text[2:])
    if raw is None:
        return None
    if kind == PLAIN:
        return _parse(raw, plain=True)
    if kind == SEALED:
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            return None
        cipher, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if not hmac.compare_digest(tag, _tag(cipher)):
            return None
        nonce, sealed = cipher[:NONCE_BYTES], cipher[NONCE_BYTES:]
        reading = _parse(_xor(sealed, _keystream(nonce, len(sealed))), plain=False)
        return reading if reading.intact else None  # the tag verified: it was never damaged
    return None


def decode(cursor: str) -> dict[bytes, EventKey] | None:
    """The positions of a cursor whose every entry verifies, by group hash; else ``None``."""
    reading = read(cursor)
    return reading.positions if reading is not None and reading.intact else None


def positions_of(cursor: str | None, groups: Iterable[str]) -> tuple[dict[str, EventKey], bool]:
    """The positions ``cursor`` holds for ``groups`` (only those), and whether it is intact.

    Not intact (``False``): not a cursor at all, or some entry did not verify; the groups it does
    not position may have been in the damaged part. Two of ``groups`` with the same hash (about
    one chance in 10**7 at 32 groups) are both left out: the cursor cannot tell them apart.
    """
    reading = read(cursor) if cursor is not None else None
    if reading is None:
        return {}, False
    by_hash: dict[bytes, list[str]] = {}
    for group in groups:
        by_hash.setdefault(group_hash(group), []).append(group)
    found = {
        names[0]: reading.positions[key]
        for key, names in by_hash.items()
        if len(names) == 1 and key in reading.positions
    }
    return found, reading.intact
