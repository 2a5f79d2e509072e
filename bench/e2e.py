"""End to end: a model save in one process reaches clients of two server processes via Redis.

``run()`` migrates a scratch SQLite database, starts two uvicorn processes serving django_sse on
``RedisPubSubChannelLayer`` (replay log in Redis Streams), and runs the fan-out client against
both with this module as the publisher: ``python -m bench.e2e --n 100 --rate 20`` saves
``Item`` rows, and ``django_sse.live.signals`` publishes each one on commit. The item's name carries
the save's monotonic time, so latency runs from before ``save()`` to receipt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import servers
from bench.servers import ROOT, Target

SETTINGS = "bench.djangoapps.settings"


def run(redis_url: str, size: tuple[int, int, int], log_dir: Path) -> dict[str, Any]:
    subs, events, rate = size
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as scratch:
        env = {
            "BENCH_APP": "django_sse",
            "REDIS_URL": redis_url,
            "BENCH_DB": str(Path(scratch) / "db.sqlite3"),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "PYTHONPATH": str(ROOT),
        }
        full_env = {**os.environ, **env}
        migrate = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if migrate.returncode != 0:
            return {"error": "migrate failed: " + migrate.stderr.strip()[-300:]}
        target = Target("django_sse", "bench.djangoapps.asgi:application", "uvicorn", env, "e2e")
        started = [servers.start(target, log_dir) for _ in range(2)]
        try:
            publisher = [sys.executable, "-m", "bench.e2e", "--n", str(events), "--rate", str(rate)]
            with tempfile.NamedTemporaryFile(suffix=".json") as out:
                command = [
                    sys.executable, "-m", "bench.client", "fanout",
                    "--subs", str(subs), "--events", str(events), "--rate", str(rate),
                    "--path", "/items", "--warm-path", "/publish?n=1&start=-1&items=1",
                    "--publisher-cmd", json.dumps(publisher), "--out", out.name,
                ]  # fmt: skip
                for server in started:
                    command += ["--url", server.url, "--server-pid", str(server.pid)]
                completed = subprocess.run(
                    command, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600
                )
                if completed.returncode != 0:
                    return {"error": completed.stderr.strip().splitlines()[-1][:300]}
                result: dict[str, Any] = json.loads(Path(out.name).read_text())
        finally:
            for server in started:
                server.stop()
    if result.get("publisher_exit"):
        result["note"] = f"publisher exited with {result['publisher_exit']}"
    return result


def publish_saves(n: int, rate: float) -> None:
    import django

    django.setup()
    from demo_project.items.models import Item
    from django_sse.live.signals import register, registration_for

    try:
        registration_for(Item)
    except ValueError:  # the demo's AppConfig registers it; a checkout without that does not
        register(Item)
    begin = time.monotonic()
    for seq in range(n):
        delay = begin + seq / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        Item.objects.create(name=f"bench:{seq}:{time.monotonic():.6f}", price=seq)


def main() -> None:
    parser = argparse.ArgumentParser(description="Save Items at a steady rate (the publisher).")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    publish_saves(args.n, args.rate)


if __name__ == "__main__":
    main()
