"""The test project's settings: the demo's app and views, the tests' apps, and switches.

Standalone (the demo's settings are the demo's): the server subprocesses the tests start read
the same module, and environment variables set per test switch what a test needs.
"""

from __future__ import annotations

import os
from pathlib import Path

from demo_project.database_url import database_from_environment
from django_sse.redis_retry import channel_layer_host

BASE_DIR = Path(__file__).resolve().parents[2]

SECRET_KEY = "tests-only-not-secret"
# DJANGO_DEBUG=0 runs a server as production would (no DEBUG-only warnings; tests that check it).
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sse",
    "demo_project.items",  # the demo's Item and Note models, pages and views
    # a model with every built-in field type, registered for live updates
    "tests.support.fieldtypes",
    "tests.support.orders",  # the Access-control example of the docs streams this app's Order model
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_sse.middleware.EventStreamMiddleware",
]
if os.environ.get("DJANGO_SSE_TEST_SLOW_MIDDLEWARE"):
    # Outermost, as project middleware usually is (tests/support/slow_middleware.py).
    MIDDLEWARE = ["tests.support.slow_middleware.SlowResponseMiddleware", *MIDDLEWARE]

ROOT_URLCONF = "tests.support.urls"
ASGI_APPLICATION = "tests.support.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL: the database a test's server processes share (SQLite file or PostgreSQL).
DATABASES = {"default": database_from_environment(BASE_DIR / "db.sqlite3")}

REDIS_URL = os.environ.get("REDIS_URL")
DJANGO_SSE: dict[str, object] = {}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # CHANNEL_LAYER_BACKEND=channels_redis.core.RedisChannelLayer selects the other one.
            "BACKEND": os.environ.get(
                "CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer"
            ),
            "CONFIG": {
                "hosts": [channel_layer_host(REDIS_URL)],
                # Redis pub/sub channels are shared by every database number: several test
                # runs on one Redis need a prefix each (DJANGO_SSE_KEY_PREFIX).
                "prefix": os.environ.get("DJANGO_SSE_KEY_PREFIX") or "asgi",
            },
        }
    }
    DJANGO_SSE.update({"REPLAY_BACKEND": "redis", "REDIS_URL": REDIS_URL})
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Per-test switches of the servers the tests start (and of the test process, where set).
if os.environ.get("DJANGO_SSE_KEY_PREFIX"):
    # Separate groups and replay streams of several test runs on one Redis.
    DJANGO_SSE["KEY_PREFIX"] = os.environ["DJANGO_SSE_KEY_PREFIX"]
if os.environ.get("DJANGO_SSE_PING_INTERVAL"):
    DJANGO_SSE["PING_INTERVAL"] = float(os.environ["DJANGO_SSE_PING_INTERVAL"])
if os.environ.get("DJANGO_SSE_OUTBOX"):
    DJANGO_SSE["OUTBOX"] = os.environ["DJANGO_SSE_OUTBOX"] == "1"
if os.environ.get("DJANGO_SSE_OUTBOX_RELAY_INTERVAL"):
    DJANGO_SSE["OUTBOX_RELAY_INTERVAL"] = float(os.environ["DJANGO_SSE_OUTBOX_RELAY_INTERVAL"])
if os.environ.get("DJANGO_SSE_SUBSCRIBER_MAX_BYTES"):
    # The frozen-client tests' control case: "0" turns the byte budget off.
    DJANGO_SSE["SUBSCRIBER_MAX_BYTES"] = int(os.environ["DJANGO_SSE_SUBSCRIBER_MAX_BYTES"]) or None
if os.environ.get("DJANGO_SSE_REAUTHORIZE_INTERVAL"):
    DJANGO_SSE["REAUTHORIZE_INTERVAL"] = float(os.environ["DJANGO_SSE_REAUTHORIZE_INTERVAL"])
if os.environ.get("DJANGO_SSE_REPLAY_WINDOW"):
    # The replay tests' small windows, trimmed while clients resume.
    DJANGO_SSE["REPLAY_WINDOW"] = int(os.environ["DJANGO_SSE_REPLAY_WINDOW"])
if os.environ.get("DJANGO_SSE_PROCESS_MAX_BYTES"):
    # The process budget tests: "0" turns the budget off (the control case).
    DJANGO_SSE["PROCESS_MAX_BYTES"] = int(os.environ["DJANGO_SSE_PROCESS_MAX_BYTES"]) or None
if os.environ.get("DJANGO_SSE_MAX_STREAMS"):
    # The stream limit tests (tests/scenarios/test_limits.py).
    DJANGO_SSE["MAX_STREAMS"] = int(os.environ["DJANGO_SSE_MAX_STREAMS"])
if os.environ.get("DJANGO_SSE_METRICS"):
    # The metrics tests (tests/scenarios/test_metrics.py).
    DJANGO_SSE["METRICS"] = os.environ["DJANGO_SSE_METRICS"] == "1"
if os.environ.get("DJANGO_SSE_PRESENCE"):
    # The presence tests (tests/scenarios/test_presence.py): "events" also publishes joined/left.
    DJANGO_SSE["PRESENCE"] = True
    DJANGO_SSE["PRESENCE_EVENTS"] = os.environ["DJANGO_SSE_PRESENCE"] == "events"
    DJANGO_SSE["PRESENCE_TTL"] = float(os.environ.get("DJANGO_SSE_PRESENCE_TTL", "3"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_sse": {"handlers": ["console"], "level": "INFO"}},
}
