from django.urls import path

from tests.browser import views

urlpatterns = [
    path("page/<str:name>", views.page),
    path("csp", views.csp_page),
    path("scripted", views.scripted),
    path("flaky", views.flaky),
    path("counter", views.counter),
]
