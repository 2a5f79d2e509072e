"""The demo's settings plus the views the tests stream from."""

import os

from demo_project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
# A model with every built-in field type, registered for live updates.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.fieldtypes"]  # noqa: F405

if os.environ.get("DJANGO_SSE_OUTBOX"):
    DJANGO_SSE["OUTBOX"] = os.environ["DJANGO_SSE_OUTBOX"] == "1"  # noqa: F405
if os.environ.get("DJANGO_SSE_OUTBOX_RELAY_INTERVAL"):
    DJANGO_SSE["OUTBOX_RELAY_INTERVAL"] = float(os.environ["DJANGO_SSE_OUTBOX_RELAY_INTERVAL"])  # noqa: F405

if os.environ.get("DJANGO_SSE_SUBSCRIBER_MAX_BYTES"):
    # The frozen-client tests' control case: "0" turns the byte budget off.
    DJANGO_SSE["SUBSCRIBER_MAX_BYTES"] = int(os.environ["DJANGO_SSE_SUBSCRIBER_MAX_BYTES"]) or None  # noqa: F405

# The README's Access-control example streams the changes of this app's Order model.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.orders"]
if os.environ.get("DJANGO_SSE_REAUTHORIZE_INTERVAL"):
    DJANGO_SSE["REAUTHORIZE_INTERVAL"] = float(os.environ["DJANGO_SSE_REAUTHORIZE_INTERVAL"])  # noqa: F405
if os.environ.get("DJANGO_SSE_REPLAY_WINDOW"):
    # The replay tests' small windows, trimmed while clients resume.
    DJANGO_SSE["REPLAY_WINDOW"] = int(os.environ["DJANGO_SSE_REPLAY_WINDOW"])  # noqa: F405
if os.environ.get("DJANGO_SSE_PROCESS_MAX_BYTES"):
    # The process budget tests: "0" turns the budget off (the control case).
    DJANGO_SSE["PROCESS_MAX_BYTES"] = int(os.environ["DJANGO_SSE_PROCESS_MAX_BYTES"]) or None  # noqa: F405
if os.environ.get("DJANGO_SSE_TEST_SLOW_MIDDLEWARE"):
    # Outermost, as project middleware usually is (tests/slow_middleware.py).
    MIDDLEWARE = ["tests.slow_middleware.SlowResponseMiddleware", *MIDDLEWARE]  # noqa: F405
