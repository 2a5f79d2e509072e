"""Does this process serve event streams? If not, a publish on the in-memory layer is lost.

The in-memory channel layer reaches only the process it lives in. A ``manage.py shell``, a
management command or a task worker that publishes on it gets ids back and reaches nobody,
which looks exactly like a publish that worked. So the first such publish of a process is
logged, under ``DEBUG``, with the fix.

A process serves streams when Django's ASGI handler has handled a request in it (a server,
whether or not anyone subscribed yet: its first publish usually comes from a request), or when
its hub holds a channel (someone subscribed, e.g. a test or an embedded server). A server that
publishes before its first request (from a thread started at start-up) is taken for a shell
once.

A logged warning, not ``warnings.warn``: it is operational news for whoever runs the shell or
the worker, and logging is where worker and shell output is read (task queues route log
records; Python's default filters show a ``warnings`` message once per call site, and Django
sends them to a logger that prints only under ``DEBUG`` anyway). With no logging configured
at all, Python still prints warnings to stderr. Only under ``DEBUG``: test suites run with
``DEBUG = False`` and publish on the in-memory layer on purpose, and in production the check
``django_sse.W004`` already warns about the in-memory layer.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import (  # type: ignore[import-untyped]
    InMemoryChannelLayer,
    get_channel_layer,
)
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started

from .. import conf
from .hub import listening_loops

logger = logging.getLogger("django_sse")

UNHEARD_PUBLISH = (
    "django_sse: publish() on the in-memory channel layer in a process that serves no event "
    "streams (a shell, a management command, a task worker?): nobody receives this event. The "
    "in-memory layer reaches only the process it runs in, never your server. Configure "
    "CHANNEL_LAYERS with channels_redis (e.g. channels_redis.pubsub.RedisPubSubChannelLayer) "
    'in every process, and DJANGO_SSE["REPLAY_BACKEND"] = "redis". '
    "(Logged once per process, with DEBUG on.)"
)


class ProcessRole:
    """What this process has shown itself to be, as far as publishing is concerned."""

    def __init__(self) -> None:
        self.serves_asgi = False
        self.warned = False

    def note_request(self, sender: Any, **kwargs: Any) -> None:
        """``request_started`` receiver: an ASGI request makes this process a server."""
        if isinstance(sender, type) and issubclass(sender, ASGIHandler):
            self.serves_asgi = True
            # One request is proof enough: cost nothing per request from now on.
            request_started.disconnect(self.note_request)

    def watch_requests(self) -> None:
        request_started.connect(self.note_request, weak=False)

    def warn_if_unheard(self) -> None:
        """Log, once, a publish on the in-memory layer that no subscriber can receive."""
        if self.warned or self.serves_asgi or not settings.DEBUG:
            return
        if not _in_memory_layer() or listening_loops():
            return
        self.warned = True
        logger.warning(UNHEARD_PUBLISH)


def _in_memory_layer() -> bool:
    # Not hub.current_layer(): channels_redis' pubsub layer needs a running loop to be asked.
    layer = get_channel_layer(conf.get("CHANNEL_LAYER"))
    return layer is None or isinstance(layer, InMemoryChannelLayer)


process_role = ProcessRole()
