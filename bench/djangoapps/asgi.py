import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.djangoapps.settings")

application = get_asgi_application()

if os.environ.get("BENCH_APP") == "recipe":
    # The Channels recipe's streams are consumers, routed ahead of Django's views.
    from channels.routing import URLRouter
    from django.urls import path, re_path

    from bench.djangoapps.recipe_urls import TickStream

    application = URLRouter([path("stream", TickStream.as_asgi()), re_path("", application)])
