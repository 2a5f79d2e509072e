"""Benchmarks of django_sse against the anchors (``make bench``); never part of ``make test``."""
