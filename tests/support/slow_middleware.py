"""A middleware outside ``EventStreamMiddleware`` whose ``process_response`` takes a while.

Django runs a sync middleware's ``process_response`` in a thread (``sync_to_async``), as it does
for most of its own. On a busy machine those hops take milliseconds each, after the subscription
already joined the hub and before the response starts: a client that leaves then was leaked
(issue 11, item 10; the churn test's flake under load). ``?slow=SECONDS`` widens that window on
purpose, so a test can land a disconnect in it every time.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin


class SlowResponseMiddleware(MiddlewareMixin):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        slow = request.GET.get("slow")
        if slow:
            time.sleep(float(slow))  # the work of a slow middleware: what the test is about
        return response
