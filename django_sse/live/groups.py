"""Group names: what ``publish`` and ``subscribe`` accept, and the channel-layer name behind one.

Channels accepts group names of ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100
characters. A name that breaks the rule would fail deep inside the layer (or, worse, be built
from a URL by an attacker), so it is checked here, with the ``KEY_PREFIX`` already counted.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Mapping
from typing import Any

from .. import conf

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


_FORMATTER = string.Formatter()
_FIELD_ROOT = re.compile(r"[^.\[]*")


def format_group(template: str, values: Mapping[str, Any], *, dotted: Collection[str] = ()) -> str:
    """``template.format(**values)`` where each value stays one segment of the group name.

    A value from a URL (``<str:name>``) may contain dots, and a dot would let it reach a group
    the view never meant to serve: ``"x.{name}"`` with ``name="private.rows"`` is
    ``"x.private.rows"``, which another view may protect. So a formatted value must be a
    non-empty segment without ``.``, unless its name is in ``dotted``. Raises ``ValueError``
    for such a value or an invalid result, ``KeyError``/``IndexError`` for a missing value.
    """
    parts: list[str] = []
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        parts.append(literal)
        if field is None:
            continue
        # Each replacement field on its own, exactly as str.format would render it.
        replacement = "{" + field + (f"!{conversion}" if conversion else "")
        replacement += (f":{spec}" if spec else "") + "}"
        text = replacement.format_map(values)
        name = _FIELD_ROOT.match(field)[0]  # type: ignore[index]  # always matches
        if name not in dotted and (not text or "." in text):
            raise ValueError(
                f"{name!r} is {text!r}: a value formatted into a group name must be one "
                "non-empty segment, without '.'."
            )
        parts.append(text)
    return validate_group("".join(parts))
