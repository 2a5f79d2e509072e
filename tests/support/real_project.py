"""A new Django project built the way the README tells a new user to, from the README's own code.

``django-admin startproject mysite`` (or the name ``ASGI_APPLICATION`` gives), two
``startapp``s, the Install section pasted into ``settings.py``, and the README's marked blocks
(see ``tests/support/readme_blocks.py``) written into the files a developer would put them in. What
the
README leaves to the reader (its ``Item`` and ``Order`` models, the imports of names it takes
for granted, the URLs that wire the apps in) is written here as glue, kept apart from the
README's code and labelled in every file, so that a failure can name the README block it
comes from.

The README's blocks, by marker, and where they go:

    settings     Install: pasted into <project>/settings.py ("..." = what startproject wrote)
    models       Models (an AppConfig): items/apps.py, literally, with no glue at all
    page         "Pages that render state": items/views.py (the page at /)
    template     The template tag: items/templates/items/home.html, inside a minimal page
    view         A minimal view: orders/views.py, at orders/<pk>/status
    access       Access control (a urls.py): orders/urls.py
    access-sync  Access control's sync check, if marked: orders/sync_check.py
    urls         Static files (a project urls.py), if marked: <project>/urls.py
    item-model   Models' Item model, if marked: items/models.py
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.readme_blocks import Block, optional_block, readme_block
from tests.support.servers import ROOT

DEFAULT_PROJECT = "mysite"  # the name Django's tutorial uses
USERS = {
    # name: (password, staff, superuser, permissions). Staff, so that the real login view a
    # startproject has (the admin's) lets them in; only "admin" may change anything there.
    "admin": ("pw-admin-5x1", True, True, []),
    "alice": ("pw-alice-5x1", True, False, ["orders.view_order"]),
    "bob": ("pw-bob-5x1", True, False, []),
}

ITEM_MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
"""

ORDER_MODELS = '''\
import asyncio

from django.conf import settings
from django.db import models
from pydantic import BaseModel


class Status(BaseModel):
    state: str
    version: int


class Order(models.Model):
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    status = models.CharField(max_length=20, default="placed")
    version = models.PositiveIntegerField(default=1)

    async def watch_status(self):
        """The README's "your async source": the status each time it changes (polls the row)."""
        seen = None
        while True:
            order = await Order.objects.aget(pk=self.pk)
            if order.version != seen:
                seen = order.version
                yield Status(state=order.status, version=order.version)
            await asyncio.sleep(0.05)
'''

ORDER_APPS = """\
from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self):
        from django_sse.live.signals import register

        from .models import Order

        register(Order)  # the Access-control example streams "orders.order" and its objects
"""

ADMIN = """\
from django.contrib import admin

from .models import {model}

admin.site.register({model})
"""

PAGE = """\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Items</title><link rel="icon" href="data:,"></head>
<body>
{block}
</body>
</html>
"""

# Appended to the Install section in settings.py: "..." in a README list stands for the entries
# that startproject wrote, as a reader takes it.
EXPAND_ELLIPSIS = """
def _expand_ellipsis():
    for name, value in list(globals().items()):
        if name.isupper() and isinstance(value, list) and ... in value:
            at = value.index(...)
            before = [entry for entry in _STARTPROJECT.get(name, []) if entry not in value]
            globals()[name] = value[:at] + before + value[at + 1 :]


_expand_ellipsis()
"""

# What a real project adds: its apps, django-debug-toolbar, and the middleware that wraps
# responses, each where Django's and the toolbar's documentation put it.
REAL_PROJECT_SETTINGS = """
DEBUG = True
INTERNAL_IPS = ["127.0.0.1"]
INSTALLED_APPS += ["debug_toolbar", "items", "orders"]


GZIP = "django.middleware.gzip.GZipMiddleware"
CONDITIONAL_GET = "django.middleware.http.ConditionalGetMiddleware"


def _insert_after(existing, new):
    MIDDLEWARE.insert(MIDDLEWARE.index(existing) + 1, new)


_insert_after("django.middleware.security.SecurityMiddleware", GZIP)
# The toolbar: "as early as possible", after middleware that encodes the response (GZip).
_insert_after(GZIP, "debug_toolbar.middleware.DebugToolbarMiddleware")
_insert_after("django.contrib.sessions.middleware.SessionMiddleware", CONDITIONAL_GET)
# LocaleMiddleware: after SessionMiddleware, before CommonMiddleware (which startproject has).
_insert_after(CONDITIONAL_GET, "django.middleware.locale.LocaleMiddleware")
"""

PROJECT_URLS = """
# Glue: the apps' URLs and the toolbar's.
from django.urls import include, path

urlpatterns += [path("", include("orders.urls")), path("__debug__/", include("debug_toolbar.urls"))]
"""

# Without a README block for urls.py: what the README's prose says about static files (sse.js),
# which Daphne and uvicorn do not serve: Django serves them while DEBUG is on.
STATIC_URLS = """
from django.contrib.staticfiles.urls import staticfiles_urlpatterns

urlpatterns += staticfiles_urlpatterns()
"""

ORDER_URLS_GLUE = """
# Glue: the minimal view and the page of "Pages that render state", at the URLs the README uses.
from items.views import home

from .views import order_status

urlpatterns += [path("orders/<int:pk>/status", order_status), path("", home, name="home")]
"""

SYNC_CHECK_URLS_GLUE = """
# Glue: the sync check of the Access-control section, in the view of its async one.
from . import sync_check

urlpatterns += [
    path(
        "orders/<int:pk>/live-sync",
        SubscriptionView.as_view(
            group="orders.order.{pk}", login_required=True, check=sync_check.owns_order
        ),
    )
]
"""

SETUP_DATA = """
import json
from django.conf import settings
from django.contrib.auth.models import Permission, User
from items.models import Item
from orders.models import Order

users = {}
for name, (password, staff, superuser, permissions) in json.loads(USERS).items():
    user = User.objects.create_user(name, password=password, is_staff=staff, is_superuser=superuser)
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    users[name] = user.pk
orders = {name: Order.objects.create(customer_id=users[name]).pk for name in ("alice", "bob")}
settings = {"INSTALLED_APPS": settings.INSTALLED_APPS, "MIDDLEWARE": settings.MIDDLEWARE}
print(json.dumps({"users": users, "orders": orders, "settings": settings}))
"""


class ProjectError(AssertionError):
    """A step of building or running the project failed; the message names the README block."""


@dataclass
class Project:
    base: Path  # the folder with manage.py
    name: str  # of the project package (settings, urls, asgi)
    # Written file (relative to base) -> the README block in it, to name it in failures.
    snippets: dict[str, Block] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    settings: dict[str, list[str]] = field(default_factory=dict)  # as the project sees them

    @property
    def database(self) -> Path:
        return self.base / "db.sqlite3"  # startproject's default DATABASES

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of the project's processes: its own settings, django_sse from here."""
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)  # manage.py and asgi.py set their own
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": f"{self.name}.settings",
                "PYTHONPATH": os.pathsep.join([str(self.base), str(ROOT)]),
                "PYTHONUNBUFFERED": "1",
                **(extra or {}),
            }
        )
        return env

    def manage(self, *args: str, step: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.base,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            last = (output.strip().splitlines() or [""])[-1]
            raise ProjectError(
                f"{step}: manage.py {args[0]} failed: {last}.{self.blame(output)}\n\n{output}"
            )
        return result.stdout

    def blame(self, output: str) -> str:
        """Name the README blocks whose files appear in a traceback or an error message."""
        named = [
            f"\n  {block.origin()}, written to {path}"
            for path, block in self.snippets.items()
            if str(self.base / path) in output or path in output
        ]
        return (" It points at:" + "".join(named)) if named else ""

    def write(self, path: str, text: str) -> None:
        (self.base / path).parent.mkdir(parents=True, exist_ok=True)
        (self.base / path).write_text(text, encoding="utf-8")

    def append(self, path: str, text: str) -> None:
        with (self.base / path).open("a", encoding="utf-8") as file:
            file.write(text)

    def write_snippet(self, path: str, name: str, glue: str = "") -> None:
        """Write README block ``name`` to ``path``, after ``glue``: imports it takes as given."""
        block = readme_block(name)
        head = f"# Glue of tests/support/real_project.py: what the README assumes.\n{glue}\n"
        self.write(path, (head if glue else "") + f"# {block.origin()}, as written:\n{block.code}")
        self.snippets[path] = block


def django_admin() -> list[str]:
    script = Path(sys.executable).parent / "django-admin"
    return [str(script)] if script.exists() else [sys.executable, "-m", "django"]


def project_name(install: Block) -> str:
    """The project the Install section's ``ASGI_APPLICATION`` names, if it names one."""
    for node in ast.walk(ast.parse(install.code)):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "ASGI_APPLICATION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value.split(".")[0]
    return DEFAULT_PROJECT


def build_project(root: Path) -> Project:
    """``startproject`` in ``root``, the README's code in it, migrated, with users and orders."""
    install = readme_block("settings")
    name = project_name(install)
    subprocess.run(
        [*django_admin(), "startproject", name, str(root)], check=True, capture_output=True
    )
    project = Project(root, name)
    for app in ("items", "orders"):
        project.manage("startapp", app, step=f"startapp {app}")

    settings = root / name / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\n\n# Before the README's Install section: what startproject wrote.\n"
        + "_STARTPROJECT = {k: list(v) for k, v in dict(globals()).items() if k.isupper()"
        + " and isinstance(v, list)}\n\n"
        + f"# {install.origin()}, as written:\n{install.code}{EXPAND_ELLIPSIS}"
        + REAL_PROJECT_SETTINGS
    )
    project.snippets[f"{name}/settings.py"] = install
    urls = f"{name}/urls.py"
    if optional_block("urls") is not None:
        project.write_snippet(urls, "urls")
    else:
        project.write(urls, (root / urls).read_text() + STATIC_URLS)
    project.append(urls, PROJECT_URLS)

    if optional_block("item-model") is not None:
        project.write_snippet("items/models.py", "item-model")
    else:
        project.write("items/models.py", ITEM_MODELS)
    project.write("items/admin.py", ADMIN.format(model="Item"))
    project.write_snippet("items/apps.py", "models")  # literally: issue 10 asks for that
    project.write_snippet(
        "items/views.py",
        "page",
        "from django.shortcuts import render\n\nfrom .models import Item\n",
    )
    template = readme_block("template")
    project.write("items/templates/items/home.html", PAGE.format(block=template.code))
    project.snippets["items/templates/items/home.html"] = template

    project.write("orders/models.py", ORDER_MODELS)
    project.write("orders/apps.py", ORDER_APPS)
    project.write("orders/admin.py", ADMIN.format(model="Order"))
    project.write_snippet("orders/views.py", "view", "from .models import Order\n")
    project.write_snippet(
        "orders/urls.py", "access", "from django.urls import path\n\nfrom .models import Order\n"
    )
    project.append("orders/urls.py", ORDER_URLS_GLUE)
    if optional_block("access-sync") is not None:
        project.write_snippet(
            "orders/sync_check.py",
            "access-sync",
            "from .models import Order\n",
        )
        project.append("orders/urls.py", SYNC_CHECK_URLS_GLUE)

    project.manage("makemigrations", "items", "orders", step="makemigrations")
    project.manage("migrate", "--noinput", step="migrate")
    output = project.manage(
        "shell", "-c", f"USERS = {json.dumps(json.dumps(USERS))}\n{SETUP_DATA}", step="users"
    )
    data = json.loads(output.strip().splitlines()[-1])
    project.users, project.orders, project.settings = (
        data["users"],
        data["orders"],
        data["settings"],
    )
    return project
