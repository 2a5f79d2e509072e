"""Resume cursors: the position of every group of a multi-group stream, in one event id.

A stream of several groups (``subscribe([...])``, a ``SubscriptionView`` with several groups,
combined feeds) sends each event with the id ``<feeds>:<cursor>`` (see multi.py); the cursor is
what the browser sends back as ``Last-Event-ID``. It holds, for each group, the last event the
stream wrote of it, keyed by a short hash of the group's name (not by its place in the URL), so
a reconnect with a different set of groups still finds its own. Layout (version 1)::

    "1p" base64url( entries || checksum )         plain: the view has no event filter
    "1s" base64url( nonce || sealed entries || tag )  sealed: some feed filters its events
    entry = group hash (4 bytes) || varint epoch || varint sequence

The checksum (4 bytes of BLAKE2b) catches a cursor damaged in transit; a plain cursor tells the
client nothing it does not know (the positions are in today's single-group ids too). A sealed
cursor is encrypted and authenticated with a key derived from ``SECRET_KEY`` (as the tokens of
tokens.py): a filtered subscriber must not learn how many events it was not shown. Its
sequences are padded to ``SEALED_SEQUENCE_BYTES``, so that the length does not give their
magnitude away either.

Cursors are untrusted input: ``decode`` returns ``None`` for anything it cannot verify, and the
positions it returns are only ever looked up for the groups the URL names (an entry for any other
group is ignored, so a cursor can never add a group). A position that verifies may still be
wrong for the group's log (another epoch, a sequence in the future): the replay log's own checks
turn that into that group's ``reset``.

With ``MAX_GROUPS`` groups of 13-digit-sequence-free realistic positions (epochs in
microseconds, sequences up to 2**35) an id stays far below the 1 KiB ``Last-Event-ID`` limit
(docs/feeds.md has the measured lengths).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

from django.conf import settings
from django.utils.crypto import salted_hmac

from .delivery import EventKey

# At most this many groups in one multi-group stream (subscribe() raises beyond it).
MAX_GROUPS = 32
PLAIN = "1p"
SEALED = "1s"
HASH_BYTES = 4
CHECKSUM_BYTES = 4
NONCE_BYTES = 12
TAG_BYTES = 8
SEALED_SEQUENCE_BYTES = 6  # varint bytes: sequences below 2**42 all look alike
# Refuse to parse more than this: a real cursor is well under 1 KiB.
MAX_CURSOR_CHARS = 1024
_MAX_PART = 2**64 - 1


def group_hash(group: str) -> bytes:
    """The short key of ``group`` inside a cursor."""
    return hashlib.blake2b(group.encode(), digest_size=HASH_BYTES).digest()


def encode_varint(value: int, minimum: int = 1) -> bytes:
    """LEB128, padded with continuation bytes to at least ``minimum`` bytes."""
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


def encode_entry(group: str, position: EventKey, sealed: bool) -> bytes:
    """One group's entry (multi.py keeps them per group and joins them per event)."""
    minimum = SEALED_SEQUENCE_BYTES if sealed else 1
    return group_hash(group) + encode_varint(position[0]) + encode_varint(position[1], minimum)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


_keys: dict[str, bytes] = {}


def _key() -> bytes:
    # Derived once per SECRET_KEY: the keystream and tag then cost two C calls per event.
    secret = settings.SECRET_KEY
    key = _keys.get(secret)
    if key is None:
        key = _keys[secret] = salted_hmac("django_sse.cursor", b"key", algorithm="sha256").digest()
    return key


def _keystream(nonce: bytes, size: int) -> bytes:
    return hashlib.shake_256(_key() + nonce).digest(size)


def _tag(data: bytes) -> bytes:
    return hashlib.blake2b(data, key=_key(), digest_size=TAG_BYTES).digest()


def _xor(data: bytes, pad: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")


def _checksum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=CHECKSUM_BYTES).digest()


def join(entries: Iterable[bytes], sealed: bool) -> str:
    """The cursor of these entries (from ``encode_entry``)."""
    body = b"".join(entries)
    if not sealed:
        return PLAIN + _b64(body + _checksum(body))
    nonce = os.urandom(NONCE_BYTES)
    cipher = nonce + _xor(body, _keystream(nonce, len(body)))
    return SEALED + _b64(cipher + _tag(cipher))


def encode(positions: Mapping[str, EventKey], sealed: bool = False) -> str:
    """The cursor of ``positions`` (group -> (epoch, sequence))."""
    return join((encode_entry(g, p, sealed) for g, p in positions.items()), sealed)


def _body(cursor: str) -> bytes | None:
    if len(cursor) > MAX_CURSOR_CHARS:
        return None
    kind, raw = cursor[:2], _unb64(cursor[2:])
    if raw is None:
        return None
    if kind == PLAIN:
        body, checksum = raw[:-CHECKSUM_BYTES], raw[-CHECKSUM_BYTES:]
        if len(raw) < CHECKSUM_BYTES or not hmac.compare_digest(checksum, _checksum(body)):
            return None
        return body
    if kind == SEALED:
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            return None
        cipher, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if not hmac.compare_digest(tag, _tag(cipher)):
            return None
        nonce, sealed = cipher[:NONCE_BYTES], cipher[NONCE_BYTES:]
        return _xor(sealed, _keystream(nonce, len(sealed)))
    return None


def decode(cursor: str) -> dict[bytes, EventKey] | None:
    """The positions in ``cursor`` by group hash; ``None`` if it is not a cursor that verifies.

    Accepts a whole event id too (``<feeds>:<cursor>``): what comes before the last ``:`` is
    the client's routing, not the server's.
    """
    body = _body(cursor.rpartition(":")[2])
    if body is None:
        return None
    positions: dict[bytes, EventKey] = {}
    index = 0
    while index < len(body):
        key = body[index : index + HASH_BYTES]
        epoch = decode_varint(body, index + HASH_BYTES)
        if len(key) < HASH_BYTES or epoch is None:
            return None
        sequence = decode_varint(body, epoch[1])
        if sequence is None:
            return None
        positions[key] = (epoch[0], sequence[0])
        index = sequence[1]
    return positions


def positions_of(cursor: str | None, groups: Iterable[str]) -> dict[str, EventKey] | None:
    """The positions ``cursor`` holds for ``groups`` (only those); ``None`` if it is invalid.

    Two of ``groups`` with the same hash (about one chance in 10**7 at 32 groups) are both left
    out: the cursor cannot tell them apart.
    """
    if cursor is None:
        return None
    found = decode(cursor)
    if found is None:
        return None
    by_hash: dict[bytes, list[str]] = {}
    for group in groups:
        by_hash.setdefault(group_hash(group), []).append(group)
    return {
        names[0]: found[key] for key, names in by_hash.items() if len(names) == 1 and key in found
    }
