"""The documentation's code blocks that a marker comment names, so tests run them as written.

The blocks live in README.md and the documentation site's pages (``docs/**/*.md``); a marker
name is unique across all of them.

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

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def documentation_files() -> list[Path]:
    """README.md and every page of the documentation site, in a stable order."""
    return [README, *sorted((ROOT / "docs").glob("**/*.md"))]


_MARKER = re.compile(r"^<!-- real-project: ([\w-]+) -->$")
_FENCE = re.compile(r"^(```+)(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    name: str
    language: str
    code: str
    line: int  # of the block's first line of code in its file
    file: str = "README.md"  # relative to the repository

    def origin(self) -> str:
        return f"{self.file} line {self.line} (<!-- real-project: {self.name} -->)"


def marked_blocks(text: str, file: str = "README.md") -> dict[str, Block]:
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
            raise ValueError(f"{file} line {number + 1}: marker {name!r} is not before a fence")
        if name in blocks:
            raise ValueError(f"{file} line {number + 1}: marker {name!r} is used twice")
        start = number + 2
        end = start
        while end < len(lines) and lines[end].strip() != fence.group(1):
            end += 1
        if end == len(lines):
            raise ValueError(f"{file} line {number + 2}: block {name!r} is never closed")
        code = "\n".join(lines[start:end]) + "\n"
        blocks[name] = Block(name, fence.group(2), code, start + 1, file)
    return blocks


def documented_blocks() -> dict[str, Block]:
    """The marked blocks of every documentation file; a name used in two files is an error."""
    blocks: dict[str, Block] = {}
    for path in documentation_files():
        file = path.relative_to(ROOT).as_posix()
        for name, block in marked_blocks(path.read_text(encoding="utf-8"), file).items():
            if name in blocks:
                raise ValueError(
                    f"{block.origin()}: marker {name!r} is also in {blocks[name].file}"
                )
            blocks[name] = block
    return blocks


def optional_block(name: str) -> Block | None:
    return documented_blocks().get(name)


def readme_block(name: str) -> Block:
    blocks = documented_blocks()
    if name not in blocks:
        files = ", ".join(path.relative_to(ROOT).as_posix() for path in documentation_files())
        raise LookupError(
            f"No block marked <!-- real-project: {name} --> in {files} (found: {sorted(blocks)})"
        )
    return blocks[name]
