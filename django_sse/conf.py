"""The ``DJANGO_SSE`` setting: one dict, read lazily so tests can override it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Seconds of silence after which a ": ping" comment keeps proxies from closing the stream.
    "PING_INTERVAL": 15.0,
    # Seconds EventStreamMiddleware waits for a stream's first event before sending headers, so
    # that an exception raised early (Http404, PermissionDenied) becomes a real error response.
    "FIRST_EVENT_WAIT": 0.25,
    # Encoded events buffered per stream before its generator is paused (backpressure).
    "STREAM_BUFFER": 256,
    # Events a subscriber may fall behind before it is disconnected (it then resumes by id).
    "SUBSCRIBER_QUEUE": 1000,
    # Bytes one subscription writes before its response ends and the client resumes by id on a
    # fresh connection. Daphne has no write backpressure: for a client that stopped reading it
    # buffers whatever is written, so this is what bounds that memory. None: no limit.
    "SUBSCRIBER_MAX_BYTES": 4 * 1024 * 1024,
    # Bytes all open streams of one process may have written on their current connections;
    # past it the streams that wrote the most end and resume by id (see budget.py). None: off.
    "PROCESS_MAX_BYTES": 256 * 1024 * 1024,
    # Event streams one process serves at once; past it a new one is refused with 503 and a
    # jittered Retry-After, before its first byte (limits.py). None: no limit.
    "MAX_STREAMS": None,
    # Prometheus metrics (needs prometheus-client: the "prometheus" extra), see metrics.py.
    "METRICS": False,
    # presence(group): who is subscribed, in every process (through Redis with the Redis replay
    # backend); a crashed process drops out after PRESENCE_TTL seconds (live/presence.py).
    "PRESENCE": False,
    "PRESENCE_TTL": 6.0,
    # Publish "joined"/"left" events to a group as authenticated users come and go.
    "PRESENCE_EVENTS": False,
    # Replay log: how many events per group are kept, and for how long (seconds).
    "REPLAY_WINDOW": 1000,
    "REPLAY_TTL": 24 * 3600,
    # Seconds a hub waits for an event that is missing from a group's order (usually still in
    # flight from another publisher) before it reads it from the replay log.
    "GAP_WAIT": 0.05,
    # "memory" (one process), "redis" (shared), or None to turn replay off.
    "REPLAY_BACKEND": "memory",
    "REDIS_URL": None,
    # The CHANNEL_LAYERS alias publish/subscribe use (an in-memory layer when none is configured).
    "CHANNEL_LAYER": "default",
    # Seconds between re-checks of a SubscriptionView stream's authorization (user still active,
    # session still valid, permissions and check still true): a revoked user stops receiving
    # within this. Logging out ends the user's streams at once. None or 0: no periodic re-check.
    "REAUTHORIZE_INTERVAL": 60.0,
    # Prefix for channel-layer groups and Redis keys, so several projects can share a broker.
    "KEY_PREFIX": "django_sse",
    # Model events go through a table written in the saving transaction (the outbox) and are
    # published after the commit; False publishes from on_commit directly (lost if that fails).
    "OUTBOX": True,
    # Seconds between relay passes in a process that serves streams (None or 0: no such pass).
    "OUTBOX_RELAY_INTERVAL": 2.0,
}


def get(name: str) -> Any:
    """Return one option of ``settings.DJANGO_SSE``, falling back to its default."""
    configured = getattr(settings, "DJANGO_SSE", {}) or {}
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("DJANGO_SSE must be a dict.")
    unknown = set(configured) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown DJANGO_SSE option(s): {', '.join(sorted(unknown))}. "
            f"Known options: {', '.join(sorted(DEFAULTS))}."
        )
    return configured.get(name, DEFAULTS[name])
