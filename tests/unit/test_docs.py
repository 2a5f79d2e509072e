"""The documentation against the code: the README's examples and the settings table cannot drift.

The site's own examples run elsewhere (tests/scenarios/test_real_project.py,
tests/unit/test_readme.py,
tests/support/access_views.py); ``make docs`` builds the site with warnings as errors.
"""

from __future__ import annotations

import ast
import re

from django_sse import conf
from tests.support.readme_blocks import README, ROOT, documented_blocks

_FENCED = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
_SETTING_ROW = re.compile(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", re.M)


def _stripped_lines(code: str) -> list[str]:
    return [line.strip() for line in code.strip("\n").split("\n")]


def _contains(lines: list[str], part: list[str]) -> bool:
    return any(lines[i : i + len(part)] == part for i in range(len(lines) - len(part) + 1))


def test_every_readme_example_is_a_run_example_of_the_docs() -> None:
    # The README's code is cut from the marked blocks that the suite runs (indentation aside).
    run = [_stripped_lines(block.code) for block in documented_blocks().values()]
    examples = [
        code
        for language, code in _FENCED.findall(README.read_text(encoding="utf-8"))
        if language in ("python", "django")
    ]
    assert examples, "the README shows no example"
    for code in examples:
        part = _stripped_lines(code)
        assert any(_contains(lines, part) for lines in run), f"not in a marked block:\n{code}"


def test_the_settings_table_is_the_defaults_of_conf() -> None:
    text = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    table = {name: ast.literal_eval(default) for name, default in _SETTING_ROW.findall(text)}
    assert table == conf.DEFAULTS


def test_no_page_names_a_setting_default_the_code_does_not_have() -> None:
    # Every option table of the site (the README had two KEY_PREFIX defaults once).
    for path in sorted((ROOT / "docs").glob("**/*.md")):
        for name, default in _SETTING_ROW.findall(path.read_text(encoding="utf-8")):
            if name in conf.DEFAULTS:
                assert ast.literal_eval(default) == conf.DEFAULTS[name], (path, name, default)


def test_the_demo_readme_quotes_the_demo_code() -> None:
    readme = (ROOT / "demo_project" / "README.md").read_text(encoding="utf-8")
    code = _stripped_lines((ROOT / "demo_project" / "items" / "notes.py").read_text())
    blocks = [block for language, block in _FENCED.findall(readme) if language == "python"]
    assert blocks
    for block in blocks:
        assert _contains(code, _stripped_lines(block)), block
