"""The live layer's per-process state is one registry, reset when the settings change."""

from __future__ import annotations

from django.test import override_settings

from django_sse.live.hub import current_layer
from django_sse.live.presence import Off, Tracker, tracker
from django_sse.live.replay import MemoryLog, get_log
from django_sse.live.state import live_state

MEMORY = {"REPLAY_BACKEND": "memory"}


def test_changing_django_sse_gives_a_fresh_replay_log() -> None:
    with override_settings(DJANGO_SSE=MEMORY):
        first = get_log()
        assert first is get_log()  # one log per configuration while the settings hold
    with override_settings(DJANGO_SSE=MEMORY):
        second = get_log()
    assert isinstance(first, MemoryLog) and isinstance(second, MemoryLog)
    assert second is not first  # the same configuration, but the settings changed in between


def test_changing_django_sse_turns_presence_on_and_off() -> None:
    with override_settings(DJANGO_SSE={**MEMORY, "PRESENCE": True}):
        on = tracker()
        assert isinstance(on, Tracker) and on is tracker()
    off = tracker()
    assert type(off) is Off and off is live_state.presence


def test_changing_channel_layers_gives_a_fresh_fallback_layer() -> None:
    with override_settings(CHANNEL_LAYERS={}):
        first = current_layer()
        assert first is live_state.fallback_layer is current_layer()
    with override_settings(CHANNEL_LAYERS={}):
        second = current_layer()
    assert second is not first


def test_reset_forgets_the_logs_but_not_the_registered_models() -> None:
    models = dict(live_state.models)
    with override_settings(DJANGO_SSE=MEMORY):
        first = get_log()
        live_state.reset()
        assert get_log() is not first
    assert live_state.models == models
