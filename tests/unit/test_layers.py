"""The response and the wire format stand on their own: nothing of them imports ``django_sse.live``.

Each check runs in a fresh interpreter in which the live layer cannot be imported at all (its
entry in ``sys.modules`` is ``None``, which makes every ``import django_sse.live...`` raise), so
an import of the live layer anywhere on the way, even an indirect one, fails the test.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each check starts a fresh interpreter.
pytestmark = pytest.mark.server

# The core: the wire format, the response and its body, the source protocol, the server stop.
CORE = [
    "django_sse.events",
    "django_sse.encoding",
    "django_sse.source",
    "django_sse.pump",
    "django_sse.stream",
    "django_sse.response",
    "django_sse.middleware",
    "django_sse.stopping",
    "django_sse.shutdown",
    "django_sse.conf",
    "django_sse.last_event_id",
    "django_sse.testing",
    "django_sse.buffer",
    "django_sse.priming",
    "django_sse.abandoned",
    "django_sse.limits",
    "django_sse.metrics",
]

BLOCKED = "import sys; sys.modules['django_sse.live'] = None\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED + code], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_without_the_live_layer(module: str) -> None:
    result = _run(
        f"import {module}\n"
        "assert not any(name.startswith('django_sse.live.') for name in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr


def test_blocking_the_live_layer_fails_a_module_that_imports_it() -> None:
    """The converse: the block is real, so a core module importing the live layer would fail."""
    result = _run("import django_sse.views\n")  # the re-export of live/views.py
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr
    assert "django_sse.live" in result.stderr


def test_the_package_gives_the_live_names_on_first_use() -> None:
    """``django_sse`` itself imports without the live layer; ``publish`` & co load it lazily."""
    result = _run(
        "import django_sse\n"
        "assert django_sse.EventSourceResponse\n"
        "del sys.modules['django_sse.live']\n"
        "from django_sse import publish, subscribe\n"
        "from django_sse.live.publish import publish as real\n"
        "assert publish is real, publish\n"
        "assert callable(subscribe)\n"
    )
    assert result.returncode == 0, result.stderr
