"""Settings for the Django apps under test.

No middleware: a sync middleware makes Django hop to a thread for every request, and what is
measured here is the streaming library, not the middleware stack. ``BENCH_APP`` selects the app;
``REDIS_URL`` switches the channel layer to Redis (the workloads across processes):
``RedisPubSubChannelLayer``, or ``RedisChannelLayer`` with ``BENCH_LAYER=core``.
"""

from __future__ import annotations

import os

BENCH_APP = os.environ.get("BENCH_APP", "django_sse")

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIDDLEWARE: list[str] = []
ROOT_URLCONF = f"bench.djangoapps.{BENCH_APP}_urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
if BENCH_APP == "django_sse":
    INSTALLED_APPS += ["django_sse", "demo_project.items"]
elif BENCH_APP == "eventstream":
    INSTALLED_APPS += ["django_eventstream"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", ":memory:"),
        "OPTIONS": {"timeout": 20},
    }
}

REDIS_URL = os.environ.get("REDIS_URL")
DJANGO_SSE: dict[str, object] = {}
LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": LAYERS[os.environ.get("BENCH_LAYER", "pubsub")],
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    DJANGO_SSE.update({"REDIS_URL": REDIS_URL, "REPLAY_BACKEND": "redis"})
    if BENCH_APP == "eventstream":
        from urllib.parse import urlsplit

        _redis = urlsplit(REDIS_URL)
        EVENTSTREAM_REDIS = {
            "host": _redis.hostname,
            "port": _redis.port or 6379,
            "db": int(_redis.path.strip("/") or 0),
        }
else:
    # Large enough that the layer itself never drops a tick: the hub's policy is under test.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }

# The metrics-cost comparison: the django_sse_metrics target (bench/servers.py) turns them on.
if os.environ.get("BENCH_METRICS") == "1":
    DJANGO_SSE["METRICS"] = True
