"""The ASGI servers the real-server suites run on, as pytest parameters.

Daphne and uvicorn run on every CI leg; granian and hypercorn on the full leg only (they carry
the ``slow`` marker, which the 3.12 and 3.13 legs deselect), to keep CI within its time.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.servers import KINDS

EVERY_LEG = ("daphne", "uvicorn")


def server_kinds(kinds: tuple[str, ...] = KINDS) -> list[Any]:
    return [
        kind if kind in EVERY_LEG else pytest.param(kind, marks=pytest.mark.slow, id=kind)
        for kind in kinds
    ]
