"""A publishing process, as a web worker or task queue would be: ``python -m
tests.support.publisher``.

``python -m tests.support.publisher GROUP COUNT --coroutines 4 --tag p1`` publishes COUNT events
``{"tag": "p1-<n>"}`` to GROUP from that many concurrent coroutines, as fast as it can; with
GROUP ``a,b,c`` each event goes to every one of those groups.
``--killed-after-log`` writes one event to the replay log exactly as ``publish()`` does and is
then killed with SIGKILL before the live send: a worker that dies at the worst moment.
The settings are the tests' (``REDIS_URL`` etc. from the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import django


async def publish_all(group: str, count: int, coroutines: int, tag: str) -> list[str]:
    from django_sse import publish

    ids: list[str] = []
    groups = group.split(",")  # several groups: each event goes to every one of them

    async def one(start: int) -> None:
        for n in range(start, count, coroutines):
            for name in groups:
                ids.append(await publish(name, {"tag": f"{tag}-{n}"}))

    await asyncio.gather(*(one(start) for start in range(coroutines)))
    return ids


async def log_only(group: str, tag: str) -> str:
    from django_sse.live.publish import make_record
    from django_sse.live.replay import get_log

    delivery = await get_log().append(group, make_record({"tag": f"{tag}-0"}))
    return delivery.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("group")
    parser.add_argument("count", type=int)
    parser.add_argument("--coroutines", type=int, default=1)
    parser.add_argument("--tag", default="p")
    parser.add_argument("--killed-after-log", action="store_true")
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.settings")
    django.setup()
    if options.killed_after_log:
        print(asyncio.run(log_only(options.group, options.tag)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    ids = asyncio.run(publish_all(options.group, options.count, options.coroutines, options.tag))
    print("\n".join(ids), flush=True)  # the ids publish() returned


if __name__ == "__main__":
    main()
