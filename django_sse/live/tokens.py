"""Opaque resume ids: where a client resumes, without telling it how many events came before.

Event ids are ``<epoch>-<sequence>`` and sequences count every event of a group. A subscriber
whose filter hides most of them (other users' rows) would learn from a ``reset`` carrying the
group's newest id how many events it did not see. Its ``reset`` carries this token instead:
the position, encrypted and authenticated with a key derived from ``SECRET_KEY`` (an HMAC-SHA256
keystream and tag, standard library only). The client sends it back as ``Last-Event-ID`` like any
id, and the subscription resumes from the position inside. A forged or altered token is not an
id (the client gets a reset).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct

from django.utils.crypto import salted_hmac

from .delivery import EventKey

PREFIX = "r"
_NONCE = 12
_TAG = 12
_SIZE = struct.calcsize(">QQ")


def _prf(purpose: str, data: bytes) -> bytes:
    return salted_hmac("django_sse.live.tokens." + purpose, data, algorithm="sha256").digest()


def seal(position: EventKey) -> str:
    """An opaque id for ``position``; a new one every call (a random nonce)."""
    nonce = os.urandom(_NONCE)
    plain = struct.pack(">QQ", *position)
    sealed = nonce + bytes(a ^ b for a, b in zip(plain, _prf("pad", nonce), strict=False))
    tag = _prf("tag", sealed)[:_TAG]
    return PREFIX + base64.urlsafe_b64encode(sealed + tag).decode().rstrip("=")


def unseal(token: str) -> EventKey | None:
    """The position inside a token made by ``seal``; ``None`` for anything else."""
    if not token.startswith(PREFIX) or len(token) > 64:
        return None
    text = token[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _NONCE + _SIZE + _TAG:
        return None
    sealed, tag = raw[:-_TAG], raw[-_TAG:]
    if not hmac.compare_digest(tag, _prf("tag", sealed)[:_TAG]):
        return None
    nonce, cipher = sealed[:_NONCE], sealed[_NONCE:]
    plain = bytes(a ^ b for a, b in zip(cipher, _prf("pad", nonce), strict=False))
    epoch, sequence = struct.unpack(">QQ", plain)
    return epoch, sequence
