"""Group names: what ``publish`` and ``subscribe`` accept, and the channel-layer name behind one.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100
characters. A name that breaks the rule would fail deep inside the layer (or, worse, be built
from a URL by an attacker), so it is checked here, with the ``KEY_PREFIX`` already counted.
"""

from __future__ import annotations

import re

from . import conf

_VALID = re.compile(r"[a-zA-Z0-9\-_.]+")
MAX_LENGTH = 99  # channels: "shorter than 100"


def layer_group(group: str) -> str:
    """Return the channel-layer group for ``group``, or raise ``ValueError`` explaining why not."""
    if not isinstance(group, str):
        raise ValueError(f"A group name must be a str, not {type(group).__name__}.")
    if not _VALID.fullmatch(group):
        raise ValueError(
            f"Invalid group name {group!r}: use only ASCII letters, digits, '-', '_' and '.'."
        )
    prefix = conf.get("KEY_PREFIX") or ""
    name = f"{prefix}.{group}" if prefix else group
    if len(name) > MAX_LENGTH:
        raise ValueError(
            f"Group name {group!r} is too long: with the prefix {prefix!r} it has {len(name)} "
            f"characters, and channel layers accept at most {MAX_LENGTH}."
        )
    return name


def validate_group(group: str) -> str:
    """Return ``group`` unchanged if it is a valid group name; raise ``ValueError`` otherwise."""
    layer_group(group)
    return group
