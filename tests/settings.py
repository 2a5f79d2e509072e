"""The demo's settings plus the views the tests stream from."""

from demo_project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
