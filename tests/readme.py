"""The README's code, as the tests run it: a doc example that drifts from the code fails a test."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"

_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(paragraph: str) -> list[str]:
    """The ```python blocks of the README paragraph that starts with ``paragraph``.

    The paragraph runs until the next one that starts with a bold title, or the next heading.
    """
    text = README.read_text()
    start = text.index("\n" + paragraph) + 1
    end = re.compile(r"^(\*\*[A-Z]|#)", re.M).search(text, start + len(paragraph))
    return _PYTHON_BLOCK.findall(text[start : end.start() if end else len(text)])


def run_as_module(code: str, name: str, package: str) -> types.ModuleType:
    """Execute ``code`` as the module ``package.name`` (so its relative imports work)."""
    module = types.ModuleType(f"{package}.{name}")
    module.__package__ = package
    module.__file__ = str(README)
    sys.modules[module.__name__] = module
    exec(compile(code, f"README.md ({name})", "exec"), module.__dict__)
    return module
