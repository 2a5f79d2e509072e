from django.urls import include, path

from tests.support import views

urlpatterns = [
    path("", include("demo_project.urls")),
    path("test/health", views.health),
    path("test/late", views.late),
    path("test/gaps", views.gaps),
    path("test/endless", views.endless),
    path("test/raise-before", views.raise_before),
    path("test/raise-middle", views.raise_middle),
    path("test/sync", views.sync_stream),
    path("test/no-content", views.no_content),
    path("test/headers", views.custom_headers),
    path("test/browser/", include("tests.browser.urls")),
    path("", include("tests.support.live_views")),
    path("", include("tests.support.stop_views")),
    path("", include("tests.support.access_views")),
    path("", include("tests.support.reliability_views")),
    path("", include("tests.support.order_views")),
    path("", include("tests.support.feed_views")),
    path("", include("tests.support.fieldtypes.urls")),
    path("", include("tests.support.limit_views")),
]
