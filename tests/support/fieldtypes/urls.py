from django.urls import path

from django_sse.live.views import SubscriptionView

urlpatterns = [
    path("test/fieldtypes/live", SubscriptionView.as_view(group="fieldtypes.everyfield")),
]
