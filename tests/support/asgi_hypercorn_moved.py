"""``tests.support.asgi``, in a hypercorn worker where django_sse cannot find the shutdown event.

As if a hypercorn release had moved it: the worker's ``Process`` object keeps no keyword
arguments (the worker function has already received them, so hypercorn itself is unaffected).
"""

import multiprocessing

from tests.support.asgi import application

multiprocessing.current_process()._kwargs = {}  # type: ignore[attr-defined]

__all__ = ["application"]
