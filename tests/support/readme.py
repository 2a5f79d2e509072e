"""The documentation's code as the tests run it: an example that drifts from the code fails."""

from __future__ import annotations

import re
import sys
import types

from tests.support.readme_blocks import ROOT, documentation_files

_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(paragraph: str) -> list[str]:
    """The ```python blocks of the documentation paragraph that starts with ``paragraph``.

    The paragraph runs until the next one that starts with a bold title, or the next heading.
    It is looked for in README.md and the pages under docs/, in that order.
    """
    for path in documentation_files():
        text = path.read_text(encoding="utf-8")
        if "\n" + paragraph in text:
            break
    else:
        raise LookupError(f"No documentation paragraph starts with {paragraph!r}")
    start = text.index("\n" + paragraph) + 1
    end = re.compile(r"^(\*\*[A-Z]|#)", re.M).search(text, start + len(paragraph))
    return _PYTHON_BLOCK.findall(text[start : end.start() if end else len(text)])


def run_as_module(code: str, name: str, package: str) -> types.ModuleType:
    """Execute ``code`` as the module ``package.name`` (so its relative imports work)."""
    module = types.ModuleType(f"{package}.{name}")
    module.__package__ = package
    module.__file__ = str(ROOT / "docs")
    sys.modules[module.__name__] = module
    exec(compile(code, f"docs ({name})", "exec"), module.__dict__)
    return module
