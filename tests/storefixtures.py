"""Store backends for the contract suite: SQLite files under tmp_path and the real PostgreSQL.

`backend` is parametrized over both; the PostgreSQL one reads its DSN from
RECONCILER_TEST_POSTGRES_DSN (skipped when unset, an error when unreachable)
and gives every test a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.secrets import ENCRYPTION_KEY_ENV
from reconciler.stores import open_store
from reconciler.stores.sql import SqlStore

ROOT = Path(__file__).resolve().parents[1]
KEY_A = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, base64 (test only)
KEY_B = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
ENV = {ENCRYPTION_KEY_ENV: KEY_A}
POSTGRES_DSN_ENV = "RECONCILER_TEST_POSTGRES_DSN"


class Backend(ABC):
    """A store location, opened as often as a test likes; what it opened is closed at teardown."""

    url: str

    def __init__(self) -> None:
        self._opened: list[SqlStore] = []

    def open(self, **options: Any) -> SqlStore:
        """Open the store, creating it (a SQLite file that does not exist is created by a write)."""
        store = open_store(self.url, **options)
        assert isinstance(store, SqlStore)
        store.init()
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self._opened:
            store.close()

    @abstractmethod
    def dump(self) -> bytes:
        """Everything the backing storage holds, as bytes to search."""

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Raw SQL on a connection of the test's own (no placeholders)."""


class SqliteBackend(Backend):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.url = f"sqlite:///{path}"  # path is absolute: sqlite:////...

    def files(self) -> list[Path]:
        """The database and every file beside it (journal, WAL, lock file); none when never created."""
        if not self.path.parent.exists():
            return []
        return sorted(p for p in self.path.parent.iterdir() if p.name.startswith(self.path.name))

    def dump(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.files())

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


class PostgresBackend(Backend):
    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.schema = schema
        self.url = f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"

    def dump(self) -> bytes:
        out = []
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                " ORDER BY 1",
                (self.schema,),
            ).fetchall()
            for (table,) in tables:
                rows = conn.execute(f'SELECT * FROM "{self.schema}"."{table}"').fetchall()
                out.append(f"{table}: {rows!r}\n")
        return "".join(out).encode()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []


def postgres_backend() -> Iterator[PostgresBackend]:
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        pytest.skip(f"{POSTGRES_DSN_ENV} is not set")
    schema = "rt_" + secrets.token_hex(6)
    with psycopg.connect(dsn, autocommit=True) as conn:  # unreachable: the test errors, never skips
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    backend = PostgresBackend(dsn, schema)
    try:
        yield backend
    finally:
        backend.close_all()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgresql":
        yield from postgres_backend()
        return
    sqlite = SqliteBackend(tmp_path / "state" / "store.db")
    try:
        yield sqlite
    finally:
        sqlite.close_all()


@pytest.fixture
def pg_backend() -> Iterator[PostgresBackend]:
    yield from postgres_backend()


@pytest.fixture
def store(backend: Backend) -> SqlStore:
    return backend.open(environ=ENV)
