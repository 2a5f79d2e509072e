from django.urls import URLPattern, URLResolver, include, path

from tests.support.settings_middleware import SELECTED

urlpatterns: list[URLPattern | URLResolver] = [path("", include("tests.support.urls"))]
if "debug_toolbar" in SELECTED:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
