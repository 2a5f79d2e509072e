"""``DATABASE_URL`` as a ``DATABASES`` entry: the demo's switch, which the test settings use too."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit


def database_from_environment(sqlite_file: Path) -> dict[str, object]:
    """The database ``DATABASE_URL`` names, else the SQLite file ``sqlite_file``."""
    url = os.environ.get("DATABASE_URL")
    database: dict[str, object] = (
        database_from_url(url) if url else {"ENGINE": "django.db.backends.sqlite3"}
    )
    database.setdefault("NAME", sqlite_file)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # Several processes may write the file at once: servers, a `manage.py shell`.
        database["OPTIONS"] = {"timeout": 20}
    return database


def database_from_url(url: str) -> dict[str, object]:
    """``sqlite:///path`` or ``postgres://user:password@host:port/name``."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parts.path[1:]) or ":memory:",
        }
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path[1:]),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (sqlite, postgres)")
