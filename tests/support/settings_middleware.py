"""``tests.support.settings`` with the middleware of a real project in front of the streams.

``DJANGO_SSE_TEST_MIDDLEWARE``: comma-separated names from ``EXTRA`` (or ``all``), each put
where its documentation says; ``DJANGO_SSE_TEST_PLACEMENT``: ``last`` (the README's: Django's
middleware outside ``EventStreamMiddleware``) or ``first``.
"""

import os

from tests.support.settings import *  # noqa: F403

EXTRA = {
    "gzip": "django.middleware.gzip.GZipMiddleware",
    "conditional": "django.middleware.http.ConditionalGetMiddleware",
    "cors": "corsheaders.middleware.CorsMiddleware",
    "whitenoise": "whitenoise.middleware.WhiteNoiseMiddleware",
    "debug_toolbar": "debug_toolbar.middleware.DebugToolbarMiddleware",
    "locale": "django.middleware.locale.LocaleMiddleware",
    "common": "django.middleware.common.CommonMiddleware",
    "csp": "csp.middleware.CSPMiddleware",
}
APPS = {"cors": "corsheaders", "debug_toolbar": "debug_toolbar", "csp": "csp"}

_names = [n for n in os.environ.get("DJANGO_SSE_TEST_MIDDLEWARE", "").split(",") if n]
SELECTED = list(EXTRA) if _names == ["all"] else _names
STREAMS = "django_sse.middleware.EventStreamMiddleware"

# The demo's list without the two whose place is chosen here, then each selected one in the
# order of EXTRA: the order their documentation asks for (GZip and CORS first, WhiteNoise right
# after SecurityMiddleware, the toolbar after what encodes the response, Locale before Common).
_base = [m for m in MIDDLEWARE if m not in (STREAMS, EXTRA["common"])]  # noqa: F405
_security = "django.middleware.security.SecurityMiddleware"
_first = [EXTRA[n] for n in ("gzip", "conditional", "cors") if n in SELECTED]
_after_security = [EXTRA[n] for n in ("whitenoise", "debug_toolbar") if n in SELECTED]
_after_session = [EXTRA[n] for n in ("locale",) if n in SELECTED]
_rest = [EXTRA[n] for n in ("csp",) if n in SELECTED]
MIDDLEWARE = []
for _name in _base:
    MIDDLEWARE.append(_name)
    if _name == _security:
        MIDDLEWARE[:0] = _first
        MIDDLEWARE += _after_security
    if _name == "django.contrib.sessions.middleware.SessionMiddleware":
        MIDDLEWARE += [*_after_session, EXTRA["common"]]
MIDDLEWARE += _rest
if os.environ.get("DJANGO_SSE_TEST_PLACEMENT", "last") == "first":
    MIDDLEWARE.insert(0, STREAMS)
else:
    MIDDLEWARE.append(STREAMS)

INSTALLED_APPS = [*INSTALLED_APPS, *(APPS[n] for n in SELECTED if n in APPS)]  # noqa: F405
ROOT_URLCONF = "tests.support.urls_middleware"

CORS_ALLOWED_ORIGINS = ["http://client.example"]
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'self'"]}}
DEBUG_TOOLBAR_CONFIG = {
    "SHOW_TOOLBAR_CALLBACK": "tests.support.settings_middleware.show_toolbar",
    # The servers inherit PYTEST_VERSION; the toolbar refuses to run in tests by default.
    "IS_RUNNING_TESTS": False,
}
LANGUAGES = [("en", "English"), ("fr", "French")]


def show_toolbar(request: object) -> bool:
    return True
