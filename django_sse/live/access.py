"""Access that ends: a stream stops when the authorization it was opened with no longer holds.

``SubscriptionView`` authorizes a subscriber before the first byte, but a stream stays open for
hours. Its access ends, in every process that serves one of its streams:

- at once when the user logs out: ``user_logged_out`` sends an ``END_TYPE`` message to the
  user's control group, which every stream of a logged-in user joins besides its own group. It is
  an ordinary hub group, so a process holds one channel-layer membership per user with streams
  there, however many streams (tabs) that user has open;
- within ``REAUTHORIZE_INTERVAL`` seconds otherwise: each stream runs the view's authorization
  again on a fresh copy of its request, with the session read again from its store and the user
  from the database. A user deactivated, deleted or with a new password, a session deleted or
  expired, a permission revoked, a ``check`` now false: the stream ends, and the browser's
  reconnect gets the 401/403.

The logout message is best effort (channel layers deliver at most once); the periodic re-check
bounds how long a revoked user may go on receiving. Like the first authorization, a re-check does
its database work in the request's own thread, and closes that connection right after: an idle
stream holds no database connection between checks.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import random
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from channels.layers import InMemoryChannelLayer  # type: ignore[import-untyped]
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from .. import conf
from .db import release_database_connections
from .delivery import EventKey, PublishedEvent
from .groups import layer_group
from .hub import END_TYPE, Hub, current_layer, get_hub
from .publish import _send_in_memory
from .subscription import Subscription

if TYPE_CHECKING:
    from .views import SubscriptionView

logger = logging.getLogger("django_sse")

USER_GROUP_PREFIX = "django_sse.user."


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a user's hook: await an async one; run a sync one where sync Django code may run.

    A sync function called on the event loop cannot use the ORM (``SynchronousOnlyOperation``):
    it runs in the request's own thread, as Django runs sync views and middleware.
    """
    if iscoroutinefunction(function):
        return await function(*args, **kwargs)
    result = await sync_to_async(function, thread_sensitive=True)(*args, **kwargs)
    if asyncio.iscoroutine(result):  # e.g. an object whose __call__ is async
        result = await result
    return result


def reauthorize_interval(value: Any) -> float | None:
    """Seconds between re-checks (``None``: the setting), or ``None`` for no periodic re-check."""
    if value is None:
        value = conf.get("REAUTHORIZE_INTERVAL")
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ImproperlyConfigured(
            f"REAUTHORIZE_INTERVAL must be a number of seconds > 0, 0 or None, not {value!r}."
        )
    return float(value)


def user_group(user: Any) -> str:
    """The control group of ``user``'s streams (hashed: any primary key makes a valid name)."""
    return USER_GROUP_PREFIX + hashlib.sha256(str(user.pk).encode()).hexdigest()[:24]


async def end_user_streams(user: Any) -> None:
    """End every open stream of ``user``, in every process (e.g. right after deactivating them).

    Their browsers reconnect and are authorized again.
    """
    name = layer_group(user_group(user))
    message = {"type": END_TYPE, "group": user_group(user)}
    layer = current_layer()
    if isinstance(layer, InMemoryChannelLayer):
        await _send_in_memory(layer, name, message)
    else:
        await layer.group_send(name, message)


def end_user_streams_sync(user: Any) -> None:
    """``end_user_streams`` for sync code."""
    async_to_sync(end_user_streams)(user)


async def end_streams_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """The ``user_logged_out`` receiver (connected in ``AppConfig.ready``)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    try:
        await end_user_streams(user)
    except Exception:
        # Logging out must never fail because of a stream: the periodic re-check ends it.
        logger.exception("Could not end the event streams of a user who logged out")


def _identity(user: Any) -> tuple[bool, Any]:
    authenticated = bool(getattr(user, "is_authenticated", False))
    return authenticated, user.pk if authenticated else None


async def _session_user(session: Any) -> Any:
    """The user ``session`` names now, or ``None``; read only, as ``aget_user`` would find it.

    Not ``aget_user`` itself: on a password hash that only a fallback secret verifies it cycles
    the session key, which a stream cannot send to its browser, so that would log the user out.
    """
    user_id = await session.aget(SESSION_KEY)
    backend_path = await session.aget(BACKEND_SESSION_KEY)
    if user_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user_id = get_user_model()._meta.pk.to_python(user_id)
    user = await load_backend(backend_path).aget_user(user_id)
    if user is None or not hasattr(user, "get_session_auth_hash"):
        return user
    session_hash = await session.aget(HASH_SESSION_KEY)
    valid = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not session_hash or not any(constant_time_compare(session_hash, h) for h in valid):
        return None
    return user


def _returning(user: Any) -> Callable[[], Any]:
    async def auser() -> Any:
        return user

    return auser


async def fresh_request(request: HttpRequest, user: Any) -> tuple[HttpRequest, Any]:
    """A copy of ``request`` as it would be authenticated now, and its user.

    The session is read again from its store and the user from the database, so a check sees
    what a new request would (the original's session and user are cached from the start).
    """
    fresh = copy.copy(request)
    current = user
    session = getattr(request, "session", None)
    if session is not None:
        # The original session was loaded when the stream started: reading it costs nothing.
        from_session = await session.aget(SESSION_KEY) is not None
        engine = import_module(settings.SESSION_ENGINE)
        fresh.session = engine.SessionStore(session.session_key)
        if from_session:
            current = await _session_user(fresh.session)
    if getattr(user, "is_authenticated", False) and current is user:
        # Authenticated some other way (a custom middleware): read the user again.
        current = await type(user)._default_manager.filter(pk=user.pk).afirst()
    if current is None:
        from django.contrib.auth.models import AnonymousUser

        current = AnonymousUser()
    for cached in ("_cached_user", "_acached_user"):
        fresh.__dict__.pop(cached, None)
    fresh.user = current
    fresh.auser = _returning(current)
    return fresh, current


class StreamAccess:
    """One stream's standing authorization: its user's control group and its re-checks.

    A member of the control group in the hub: the hub's ``end`` (a logout, or a failed channel
    layer) ends the stream.
    """

    def __init__(
        self,
        view: SubscriptionView,
        request: HttpRequest,
        group: str,
        user: Any,
        kwargs: dict[str, Any],
        interval: float | None,
    ) -> None:
        self.view = view
        self.request = request
        self.group = group
        self.user = user
        self.kwargs = kwargs
        self.interval = interval
        # What is authorized again: (view, group, URL kwargs); several on a combined stream.
        self.checks: list[tuple[SubscriptionView, str, dict[str, Any]]] = [(view, group, kwargs)]
        self.control = user_group(user) if _identity(user)[0] else None
        self.subscription: Subscription | None = None
        self._hub: Hub | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, subscription: Subscription) -> None:
        self.subscription = subscription
        if self.control is not None:
            hub = self._hub = get_hub()
            await hub.join(self.control, self)
        # The first re-check at a random moment of the interval: streams that opened together
        # (clients reconnecting after a deploy) do not all query the database together.
        self._arm(random.uniform(0.5, 1.0))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._hub is not None and self.control is not None:
            self._hub.leave(self.control, self)

    # --- a member of the control group in the hub ---

    def push(self, delivery: PublishedEvent) -> bool:
        return True  # nothing is published to a control group; nothing of it reaches a client

    def reset(self, reason: str, position: EventKey) -> bool:
        return True  # a control group has no events to lose

    def end(self, error: Exception | None = None) -> None:
        if self.subscription is not None:
            self.subscription.end(error)

    # --- the periodic re-check ---

    def _arm(self, fraction: float = 1.0) -> None:
        # Called from the stream's task (or its re-check): the timer, and the task it starts,
        # run in the request's context, so sync code runs in the request's thread.
        if self.interval is not None:
            delay = self.interval * fraction
            self._timer = asyncio.get_running_loop().call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        subscription = self.subscription
        if subscription is None or subscription.finished:
            return
        self._task = asyncio.get_running_loop().create_task(self._recheck(subscription))

    async def _recheck(self, subscription: Subscription) -> None:
        try:
            allowed = await self.still_allowed()
        except Exception as exc:
            # Fail closed: the browser comes back in a moment and is authorized afresh.
            logger.exception("Could not re-check the access of a stream of %s", self.group)
            subscription.end(exc)
            return
        finally:
            await release_database_connections()
        if not allowed:
            logger.info("Ending a stream of %s: its access was revoked", self.group)
            subscription.end()
        elif not subscription.finished:
            self._arm()

    async def still_allowed(self) -> bool:
        """Would the view authorize this stream's request now?"""
        request, user = await fresh_request(self.request, self.user)
        if _identity(user) != _identity(self.user):
            return False  # logged out, session gone or expired, user deleted or deactivated
        if _identity(user)[0] and not getattr(user, "is_active", True):
            return False  # inactive, even where the backend lets inactive users log in
        for view, group, kwargs in self.checks:
            if await call(view.authorize, request, group, user, **kwargs) is not None:
                return False
        return True


class GuardedSubscription(Subscription):
    """A subscription whose ``StreamAccess`` starts with it and stops with it."""

    def __init__(self, group: str, *, access: StreamAccess, **kwargs: Any) -> None:
        super().__init__(group, **kwargs)
        self.access = access
        self._access_started = False

    async def open(self, first_event_wait: float = 0.0) -> None:
        await super().open()
        if self._access_started or self.finished:
            return
        self._access_started = True
        try:
            await self.access.start(self)
        except Exception as exc:  # the channel layer is down: the browser comes back later
            self.end(exc)

    async def wait(self, limit: float | None) -> None:
        await self.open()  # whoever drives it first, the access starts with the subscription
        await super().wait(limit)

    def end(self, error: Exception | None = None) -> None:
        super().end(error)
        self.access.stop()

    async def close(self) -> None:
        await super().close()
        self.access.stop()
