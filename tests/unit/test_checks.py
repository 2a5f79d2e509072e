"""System checks warn about set-ups under which event streams break quietly."""

from __future__ import annotations

from unittest import mock

import django
import pytest
from django.conf import settings
from django.core.checks import CheckMessage, run_checks
from django.test import override_settings

from django_sse import checks
from tests.support.servers import manage


def ids(messages: list[CheckMessage]) -> list[str]:
    return [m.id or "" for m in messages]


@pytest.mark.server
@pytest.mark.parametrize("settings_module", ["demo_project.settings", "tests.support.settings"])
def test_the_demo_project_passes(settings_module: str) -> None:
    output = manage("check", env={"DJANGO_SETTINGS_MODULE": settings_module})
    assert "System check identified no issues" in output


@pytest.mark.server
def test_ping_interval_over_proxy_idle_timeouts_warns_through_manage_py() -> None:
    with pytest.raises(RuntimeError, match=r"django_sse\.W001"):
        manage("check", "--fail-level", "WARNING", env={"DJANGO_SSE_PING_INTERVAL": "120"})


@pytest.mark.parametrize("value", [-1, "15", True, None])
def test_bad_ping_interval_is_an_error(value: object) -> None:
    with override_settings(DJANGO_SSE={"PING_INTERVAL": value}):
        assert ids(checks.check_settings()) == ["django_sse.E002"]


def test_disabled_pings_warn() -> None:
    with override_settings(DJANGO_SSE={"PING_INTERVAL": 0}):
        assert ids(checks.check_settings()) == ["django_sse.W001"]


def test_unknown_option_is_an_error() -> None:
    with override_settings(DJANGO_SSE={"PING_INTERVALL": 5}):
        messages = checks.check_settings()
    assert ids(messages) == ["django_sse.E001"]
    assert "PING_INTERVALL" in messages[0].msg


def test_wsgi_runserver_warns() -> None:
    # As if neither daphne nor channels were installed (the demo has daphne).
    with mock.patch.object(checks, "ASGI_RUNSERVERS", ("not_installed",)):
        assert ids(checks.check_server()) == ["django_sse.W002"]
    assert checks.check_server() == []


def test_gzip_middleware_needs_no_warning_on_any_django() -> None:
    # W003 warned that GZipMiddleware held events back on Django < 6.1. Event streams carry
    # Content-Encoding: identity now, which it leaves alone
    # (tests/scenarios/test_middleware_streams.py
    # streams through it on Django 5.2 and 6.1).
    middleware = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=middleware):
        for version in [(5, 2, 0, "final", 0), (6, 1, 0, "final", 0)]:
            with mock.patch.object(django, "VERSION", version):
                assert "django_sse.W003" not in ids(run_checks(databases=[]))


def test_in_memory_layer_in_production_warns() -> None:
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    redis = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
    with override_settings(DEBUG=False, CHANNEL_LAYERS=memory):
        assert ids(checks.check_channel_layer()) == ["django_sse.W004"]
    with override_settings(DEBUG=False, CHANNEL_LAYERS={}):
        assert ids(checks.check_channel_layer()) == ["django_sse.W004"]
    with override_settings(DEBUG=False, CHANNEL_LAYERS=redis):
        assert checks.check_channel_layer() == []
    with override_settings(DEBUG=True, CHANNEL_LAYERS=memory):
        assert checks.check_channel_layer() == []


def test_memory_replay_log_with_a_shared_layer_warns() -> None:
    redis = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=redis, DJANGO_SSE={"REPLAY_BACKEND": "memory"}):
        assert ids(checks.check_replay_log()) == ["django_sse.W005"]
    shared_log = {"REPLAY_BACKEND": "redis", "REDIS_URL": "redis://127.0.0.1:6379/15"}
    with override_settings(CHANNEL_LAYERS=redis, DJANGO_SSE=shared_log):
        assert checks.check_replay_log() == []
    with override_settings(CHANNEL_LAYERS=memory, DJANGO_SSE={"REPLAY_BACKEND": "memory"}):
        assert checks.check_replay_log() == []


def test_static_files_that_nothing_can_serve_warn() -> None:
    # As if django.contrib.staticfiles were not installed (reloading the apps would register
    # the demo's model twice).
    with mock.patch.object(checks, "STATICFILES_APP", "not.installed.staticfiles"):
        assert ids(checks.check_static_files()) == ["django_sse.W006"]
    # Production without STATIC_ROOT: collectstatic has nowhere to put sse.js.
    with override_settings(DEBUG=False, STATIC_ROOT=None):
        messages = checks.check_static_files()
        assert ids(messages) == ["django_sse.W006"]
        assert "STATIC_ROOT" in messages[0].msg
    assert checks.check_static_files() == []  # the demo: DEBUG on (runserver serves them)
    with override_settings(DEBUG=False):
        assert checks.check_static_files() == []  # the demo's STATIC_ROOT


def test_static_files_served_otherwise_do_not_warn() -> None:
    remote = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        # Not a local folder (as a cloud bucket storage): STATIC_ROOT is not needed.
        "staticfiles": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    with override_settings(DEBUG=False, STATIC_ROOT=None, STORAGES=remote):
        assert checks.check_static_files() == []
    whitenoise = [checks.WHITENOISE, *settings.MIDDLEWARE]
    with override_settings(
        DEBUG=False, STATIC_ROOT=None, MIDDLEWARE=whitenoise, WHITENOISE_USE_FINDERS=True
    ):
        assert checks.check_static_files() == []
