"""Stores by URL scheme. Each module is imported only when its scheme is used."""

from __future__ import annotations

from typing import Any

from reconciler.errors import UsageError
from reconciler.stores.base import Store

DEFAULT_STORE_URL = "sqlite:///.reconciler/store.db"


_SECRET_PARAMS = ("password", "sslpassword", "passfile", "token", "sslkey")


def redact_store_url(url: str) -> str:
    """A store URL as messages may show it: no password or token, in any of the forms a store URL
    takes (user:secret@host, ?password= and ?sslpassword=, a libpq `key=value` string)."""
    import re

    text = re.sub(r"(?i)\b(" + "|".join(_SECRET_PARAMS) + r")\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)", r"\1=(redacted)", url)
    text = re.sub(r"://[^/@?#\s:]+@", "://(redacted)@", text)  # a bare user-info may be a token
    return re.sub(r"(://[^/@?#\s]*?):[^/@?#\s]*@", r"\1:(redacted)@", text)


def open_store(url: str, **options: Any) -> Store:
    """Open the store a URL names: sqlite:///, postgresql://, coder+https:// (coder+http:// for loopback)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from reconciler.stores.sqlite import SqliteStore

        return SqliteStore(url, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from reconciler.stores.postgres import PostgresStore
        except ImportError as exc:
            if not (exc.name or "psycopg").startswith("psycopg"):
                raise
            raise UsageError(
                "PostgreSQL stores need the psycopg driver, which the `postgres` extra installs: "
                "pip install 'reconciler[postgres]' (pipx and uv tool install take the same "
                f"'reconciler[postgres] @ …'); {exc}"
            ) from None
        return PostgresStore(url, **options)
    if scheme in ("coder+https", "coder+http"):
        from reconciler.stores.coder import CoderStore

        return CoderStore(url, **options)
    if not scheme:
        shown = redact_store_url(url)
        raise UsageError(
            f"{shown!r} is not a store URL: for a SQLite file write sqlite:///{shown} "
            "(sqlite:/// then the path, relative or absolute); else postgresql://… or coder+https://host"
        )
    raise UsageError(
        f"unsupported store URL scheme {scheme!r}: use sqlite:///path.db, postgresql://… or coder+https://host"
    )


def missing_store_note(url: str) -> str | None:
    """For a SQLite URL whose file does not exist, what a read of it means: an empty store, which a
    mistyped path would also give. None for every other store."""
    if not url.lower().startswith("sqlite:///"):
        return None
    from reconciler.stores.sqlite import sqlite_path

    path = sqlite_path(url)
    if path.exists() or path.is_symlink():
        return None
    return (f"no SQLite store at {path} (from {redact_store_url(url)}): read as an empty store, which the "
            "first apply creates; if you expected one, check --store (RECONCILER_STORE)")
