"""Settings of the demo project: ``REDIS_URL`` and ``DATABASE_URL`` switch its backends.

Without them it runs in one process on SQLite, with the in-memory channel layer. With
``REDIS_URL`` the channel layer and the replay log are Redis, so that several processes (a
second server, ``manage.py shell``) reach the same browsers. Nothing here is for the tests: they
have settings of their own (``tests/support/settings.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from demo_project.database_url import database_from_environment
from django_sse.redis_retry import channel_layer_host

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "daphne",  # first: makes runserver an ASGI server
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # serves and collects the template tag's sse.js
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
    # An exception raised before a stream's first event (Http404, PermissionDenied) becomes the
    # usual error response instead of a 200.
    "django_sse.middleware.EventStreamMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,  # the demo's templates are in demo_project/items/templates/
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_environment(BASE_DIR / "db.sqlite3")}

REDIS_URL = os.environ.get("REDIS_URL")
# Presence: the live page's "N viewing" badge (items/viewers.py).
DJANGO_SSE: dict[str, object] = {"PRESENCE": True}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # One retry on a connection error: the first publish after a Redis restart works.
            "CONFIG": {"hosts": [channel_layer_host(REDIS_URL)]},
        }
    }
    # Replay from a Redis Stream, so a client may reconnect to another server process.
    DJANGO_SSE.update({"REPLAY_BACKEND": "redis", "REDIS_URL": REDIS_URL})
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "notes"
LOGOUT_REDIRECT_URL = "home"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_sse": {"handlers": ["console"], "level": "INFO"}},
}
