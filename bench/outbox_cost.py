"""What a save of a registered model costs, with and without the outbox.

Runs N ``Item.objects.create()`` in autocommit and in one ``atomic()`` block, for: the model not
registered (Django alone), registered with ``OUTBOX=False`` (read-back + ``on_commit`` publish)
and registered with the outbox (read-back + outbox row + relay after the commit). The channel
layer is the in-memory one, so publishing costs the same little in both registered modes: the
difference is the database work. Prints microseconds per save: wall time (min and median of
``--rounds``, the modes interleaved) and this process's CPU time (not the database server's).

    DATABASE_URL=postgres://... python -m bench.outbox_cost --n 1000 [--no-publish]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any


def measure(n: int, rounds: int, publish: bool = True) -> dict[str, Any]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.settings")
    os.environ.pop("REDIS_URL", None)
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import override_settings

    from demo_project.items.models import Item
    from django_sse.live import outbox, signals
    from django_sse.models import OutboxEvent

    call_command("migrate", verbosity=0)
    outbox.relay()  # what an interrupted earlier run left
    if not publish:
        outbox.publish_events = lambda events: None  # type: ignore[assignment]

    def saves(atomic: bool) -> tuple[float, float]:
        begin, cpu = time.perf_counter(), time.process_time()
        if atomic:
            with transaction.atomic():
                for i in range(n):
                    Item.objects.create(name=f"bench-{i}", price=i)
        else:
            for i in range(n):
                Item.objects.create(name=f"bench-{i}", price=i)
        elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
        assert not OutboxEvent.objects.exists()
        Item.objects.filter(name__startswith="bench-").delete()
        return elapsed / n * 1e6, cpu / n * 1e6

    modes = [("not registered", None), ("OUTBOX=False", False), ("outbox", True)]
    timings: dict[str, list[tuple[float, float]]] = {}
    # Rounds interleave the modes, so that a busy moment of the machine hits them all alike.
    for _ in range(rounds):
        for atomic in (False, True):
            for label, outbox_on in modes:
                if outbox_on is None:
                    signals.unregister(Item)
                with override_settings(DJANGO_SSE={**settings_dict(), "OUTBOX": bool(outbox_on)}):
                    result = saves(atomic)
                if outbox_on is None:
                    signals.register(Item)
                key = f"{'atomic' if atomic else 'autocommit'} / {label}"
                timings.setdefault(key, []).append(result)
    results: dict[str, Any] = {
        "vendor": connection.vendor,
        "n": n,
        "rounds": rounds,
        "publish": publish,
    }
    for key, values in timings.items():
        walls = [wall for wall, _ in values]
        results[key] = {
            "wall min": round(min(walls), 1),
            "wall median": round(statistics.median(walls), 1),
            "cpu median": round(statistics.median(cpu for _, cpu in values), 1),
        }
    return results


def settings_dict() -> dict[str, Any]:
    from django.conf import settings

    return dict(getattr(settings, "DJANGO_SSE", {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-publish", action="store_true", help="publish nothing: the database work alone"
    )
    args = parser.parse_args()
    print(json.dumps(measure(args.n, args.rounds, publish=not args.no_publish), indent=1))


if __name__ == "__main__":
    main()
