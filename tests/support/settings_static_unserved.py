"""The test settings with a URLconf that serves no static files, as many a project's does."""

from tests.support.settings import *  # noqa: F403

ROOT_URLCONF = "tests.support.urls_static_unserved"
