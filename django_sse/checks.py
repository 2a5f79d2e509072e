"""System checks (``manage.py check``) for set-ups under which event streams break quietly."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import conf

# Common idle timeouts: nginx proxy_read_timeout, AWS ALB, Heroku's router, Cloudflare (100 s).
PROXY_IDLE_TIMEOUT = 60.0
IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
ASGI_RUNSERVERS = ("daphne", "channels")


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        interval = conf.get("PING_INTERVAL")
        wait = conf.get("FIRST_EVENT_WAIT")
    except ImproperlyConfigured as error:
        return [Error(str(error), id="django_sse.E001")]
    errors: list[CheckMessage] = []
    for name, value in [("PING_INTERVAL", interval), ("FIRST_EVENT_WAIT", wait)]:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(
                Error(
                    f"DJANGO_SSE['{name}'] must be a number of seconds >= 0, not {value!r}.",
                    id="django_sse.E002",
                )
            )
    if errors:
        return errors
    if interval > PROXY_IDLE_TIMEOUT or interval == 0:
        errors.append(
            Warning(
                f"DJANGO_SSE['PING_INTERVAL'] is {interval} s: proxies and load balancers "
                f"commonly close connections idle for {PROXY_IDLE_TIMEOUT:.0f} s.",
                hint="Keep the ping interval well under 60 s (the default is 15 s).",
                id="django_sse.W001",
            )
        )
    return errors


# The fixed warnings, as Django's own checks keep theirs (django/core/checks/security/).
W002 = Warning(
    "`manage.py runserver` serves WSGI here: async event streams cannot be served under WSGI "
    "and EventSourceResponse refuses them.",
    hint="Add 'daphne' at the top of INSTALLED_APPS (runserver then serves ASGI), and deploy "
    "with an ASGI server (daphne, uvicorn, granian, hypercorn).",
    id="django_sse.W002",
)
W004 = Warning(
    "publish()/subscribe() use the in-memory channel layer, which reaches only the process it "
    "runs in: events published by other server processes, workers, shells or task queues "
    "never reach subscribers here.",
    hint="In production (DEBUG=False) configure channels_redis (RedisPubSubChannelLayer) in "
    "CHANNEL_LAYERS, unless you really run one process.",
    id="django_sse.W004",
)
W005 = Warning(
    "Events are shared between processes through the channel layer, but replayed from a log "
    "in each process's memory: ids of different processes do not compare, so a client that "
    "reconnects to another process gets a reset instead of what it missed.",
    hint='Set DJANGO_SSE["REPLAY_BACKEND"] = "redis" and DJANGO_SSE["REDIS_URL"].',
    id="django_sse.W005",
)


def _layer_backend() -> str:
    """The backend of the channel layer ``DJANGO_SSE["CHANNEL_LAYER"]`` names."""
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    backend: str = layers.get(conf.get("CHANNEL_LAYER"), {}).get("BACKEND", IN_MEMORY_LAYER)
    return backend


@register(Tags.compatibility)
def check_server(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [] if any(app in settings.INSTALLED_APPS for app in ASGI_RUNSERVERS) else [W002]


@register(Tags.compatibility)
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [] if settings.DEBUG or _layer_backend() != IN_MEMORY_LAYER else [W004]


@register(Tags.compatibility)
def check_replay_log(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    shared = _layer_backend() != IN_MEMORY_LAYER
    return [W005] if shared and conf.get("REPLAY_BACKEND") == "memory" else []


STATICFILES_APP = "django.contrib.staticfiles"
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"


@register(Tags.staticfiles)
def check_static_files(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The template tag's client is a static file: warn where it is known to stay unserved.

    Only what settings prove: under ``DEBUG`` only the server knows (``runserver`` serves static
    files, Daphne and uvicorn do not), and there the page's console says so when ``sse.js``
    fails to load.
    """
    if STATICFILES_APP not in settings.INSTALLED_APPS:
        return [
            Warning(
                f"'{STATICFILES_APP}' is not in INSTALLED_APPS: nothing finds, collects or "
                "serves django_sse/sse.js, so pages with {% sse_stream %} stay static.",
                hint=f"Add '{STATICFILES_APP}' to INSTALLED_APPS (README: Install).",
                id="django_sse.W006",
            )
        ]
    if settings.DEBUG or settings.STATIC_ROOT or not _collects_into_static_root():
        return []
    if WHITENOISE in settings.MIDDLEWARE and getattr(settings, "WHITENOISE_USE_FINDERS", False):
        return []  # WhiteNoise serves the apps' static folders themselves
    return [
        Warning(
            "DEBUG is off and STATIC_ROOT is not set: collectstatic has nowhere to put "
            "django_sse/sse.js, so no web server or WhiteNoise can serve it and pages with "
            "{% sse_stream %} stay static (the browser gets a 404 for the script).",
            hint="Set STATIC_ROOT, run collectstatic and serve it (WhiteNoise, your web server).",
            id="django_sse.W006",
        )
    ]


def _collects_into_static_root() -> bool:
    """Is the static files storage a local folder (STATIC_ROOT), not e.g. a cloud bucket?"""
    from django.core.files.storage import FileSystemStorage
    from django.utils.module_loading import import_string

    backend = settings.STORAGES.get("staticfiles", {}).get("BACKEND", "")
    try:
        storage = import_string(backend)
    except ImportError:
        return False  # Django's own checks report a storage that does not import
    return isinstance(storage, type) and issubclass(storage, FileSystemStorage)
