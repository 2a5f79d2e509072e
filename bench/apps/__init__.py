"""The apps under test: the floor (bare ASGI), the anchors, and django_sse."""
