"""The Django apps under test; ``BENCH_APP`` (hub, django_sse, eventstream) picks one."""
