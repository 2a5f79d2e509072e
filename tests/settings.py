"""The demo's settings plus the views the tests stream from."""

import os

from demo_project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"

if os.environ.get("DJANGO_SSE_SUBSCRIBER_MAX_BYTES"):
    # The frozen-client tests' control case: "0" turns the byte budget off.
    DJANGO_SSE["SUBSCRIBER_MAX_BYTES"] = int(os.environ["DJANGO_SSE_SUBSCRIBER_MAX_BYTES"]) or None  # noqa: F405

if os.environ.get("DJANGO_SSE_TEST_SLOW_MIDDLEWARE"):
    # Outermost, as project middleware usually is (tests/slow_middleware.py).
    MIDDLEWARE = ["tests.slow_middleware.SlowResponseMiddleware", *MIDDLEWARE]  # noqa: F405
