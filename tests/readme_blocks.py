"""The README's code blocks that a marker comment names, so that a test can run the docs as written.

A block is marked by an HTML comment on the line before its opening fence, which renders as
nothing on GitHub or PyPI::

    <!-- real-project: view -->
    ```python
    ...
    ```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"

_MARKER = re.compile(r"^<!-- real-project: ([\w-]+) -->$")
_FENCE = re.compile(r"^(```+)(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    name: str
    language: str
    code: str
    line: int  # of the block's first line of code in README.md

    def origin(self) -> str:
        return f"README.md line {self.line} (<!-- real-project: {self.name} -->)"


def marked_blocks(text: str) -> dict[str, Block]:
    """Every marked block of ``text``, by marker name; a marker must sit right before a fence."""
    lines = text.split("\n")
    blocks: dict[str, Block] = {}
    for number, line in enumerate(lines):
        marker = _MARKER.match(line.strip())
        if marker is None:
            continue
        name = marker.group(1)
        fence = _FENCE.match(lines[number + 1]) if number + 1 < len(lines) else None
        if fence is None:
            raise ValueError(f"README.md line {number + 1}: marker {name!r} is not before a fence")
        if name in blocks:
            raise ValueError(f"README.md line {number + 1}: marker {name!r} is used twice")
        start = number + 2
        end = start
        while end < len(lines) and lines[end].strip() != fence.group(1):
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md line {number + 2}: block {name!r} is never closed")
        code = "\n".join(lines[start:end]) + "\n"
        blocks[name] = Block(name, fence.group(2), code, start + 1)
    return blocks


def optional_block(name: str) -> Block | None:
    return marked_blocks(README.read_text(encoding="utf-8")).get(name)


def readme_block(name: str) -> Block:
    blocks = marked_blocks(README.read_text(encoding="utf-8"))
    if name not in blocks:
        raise LookupError(
            f"README.md has no block marked <!-- real-project: {name} --> (found: {sorted(blocks)})"
        )
    return blocks[name]
