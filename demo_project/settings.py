"""Settings of the demo project. ``DATABASE_URL`` and ``REDIS_URL`` switch its backends."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django_sse.redis_retry import channel_layer_host

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",  # makes runserver an ASGI server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sse",
    "demo_project.items",
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

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def database_from_url(url: str) -> dict[str, object]:
    """``sqlite:///path`` or ``postgres://user:password@host:port/name``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parts.path[1:]) or ":memory:",
        }
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path[1:]),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (sqlite, postgres)")


DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several server processes share one file in tests and in the two-server demo.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}

REDIS_URL = os.environ.get("REDIS_URL")
DJANGO_SSE: dict[str, object] = {}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # CHANNEL_LAYER_BACKEND=channels_redis.core.RedisChannelLayer selects the other one.
            "BACKEND": os.environ.get(
                "CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer"
            ),
            # One retry on a connection error: the first publish after a Redis restart works.
            "CONFIG": {
                "hosts": [channel_layer_host(REDIS_URL)],
                # Redis pub/sub channels are shared by every database number: several projects
                # (or test runs) on one Redis need a prefix each (DJANGO_SSE_KEY_PREFIX).
                "prefix": os.environ.get("DJANGO_SSE_KEY_PREFIX") or "asgi",
            },
        }
    }
    # Replay from a Redis Stream, so a client may reconnect to another server process.
    DJANGO_SSE.update({"REPLAY_BACKEND": "redis", "REDIS_URL": REDIS_URL})
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

if os.environ.get("DJANGO_SSE_KEY_PREFIX"):
    # Separate groups and replay streams of several projects (or test runs) on one Redis.
    DJANGO_SSE["KEY_PREFIX"] = os.environ["DJANGO_SSE_KEY_PREFIX"]
if os.environ.get("DJANGO_SSE_PING_INTERVAL"):
    DJANGO_SSE["PING_INTERVAL"] = float(os.environ["DJANGO_SSE_PING_INTERVAL"])

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_sse": {"handlers": ["console"], "level": "INFO"}},
}
