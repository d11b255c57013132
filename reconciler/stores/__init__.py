"""Stores by URL scheme. Each module is imported only when its scheme is used."""

from __future__ import annotations

from typing import Any

from reconciler.errors import UsageError
from reconciler.stores.base import Store

DEFAULT_STORE_URL = "sqlite:///.reconciler/store.db"


def open_store(url: str, **options: Any) -> Store:
    """Open the store a URL names: sqlite:///, postgresql://, coder+https:// (coder+http:// for loopback)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from reconciler.stores.sqlite import SqliteStore

        return SqliteStore(url, **options)
    if scheme in ("postgresql", "postgres"):
        from reconciler.stores.postgres import PostgresStore

        return PostgresStore(url, **options)
    if scheme in ("coder+https", "coder+http"):
        from reconciler.stores.coder import CoderStore

        return CoderStore(url, **options)
    raise UsageError(
        f"unsupported store URL scheme {scheme or url!r}: "
        "use sqlite:///path.db, postgresql://… or coder+https://host"
    )
