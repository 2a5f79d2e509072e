"""``manage.py sse_relay``: publish the model events waiting in the outbox.

Events wait there when publishing failed at commit (the broker was down) or the process died
between its commit and the publish. The next commit and every process serving streams relay
them too; this command is for a site with no traffic, a cron job or a deploy step (one pass),
or a small process of its own (``--loop``).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from django_sse.live import outbox


class Command(BaseCommand):
    help = "Publish the model events waiting in django_sse's outbox, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--loop", action="store_true", help="Keep relaying (every --interval seconds)."
        )
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between passes.")
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            help="Database alias (repeatable); default: every database the outbox migrates to.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = options["databases"] or outbox.databases()
        while True:
            for alias in aliases:
                connections[alias].close_if_unusable_or_obsolete()
                if options["loop"]:
                    count = outbox.relay_quietly(alias)  # logged; the next pass retries
                else:
                    count = self._relay_once(alias)
                if count or not options["loop"]:
                    self.stdout.write(f"{alias}: {count} event(s) published")
            if not options["loop"]:
                return
            time.sleep(options["interval"])

    def _relay_once(self, alias: str) -> int:
        try:
            return outbox.relay(alias)
        except outbox.RelayBusy:
            self.stderr.write(f"{alias}: another relay is at work; it publishes the rest")
            return 0
        except Exception as exc:
            raise CommandError(
                f"{alias}: could not publish ({type(exc).__name__}: {exc}); "
                "the events stay in the outbox"
            ) from exc
