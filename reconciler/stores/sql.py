"""One SQL store, two dialects.

`SqlStore` holds the schema, its migrations, every query and all the logic;
a `Dialect` (sqlite.py, postgres.py) supplies only what differs: how to
connect, the parameter placeholder, a few DDL and transaction words, how to
lock, and how to word a driver error. Queries are written once, with `?`
placeholders.

Secrets live in their own table, one row per slot (`api_keys/0`,
`settings/bedrock/access_key`), encrypted with `Cipher` (the slot is the
associated data) and fingerprinted with a keyed HMAC whose salt is created
with the store. Plaintext is never written.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets as random
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from reconciler.changes import APPLIED, CREATE, DELETE, REPLACE, UPDATE, Change, ChangeResult
from reconciler.errors import SecretError, StoreError, UsageError
from reconciler.prices import default_price_book
from reconciler.secrets import ENCRYPTION_KEY_ENV, Cipher, Secret, fingerprint
from reconciler.state import (
    MODEL,
    OVERRIDE,
    PRICE,
    PROVIDER,
    SETTINGS,
    Key,
    Record,
    State,
    key_text,
    object_meta,
    secret_slot_paths,
)
from reconciler.stores.base import Capabilities, ProgressCallback, RunInfo

DEFAULT_ORGANIZATION = "default"
LOCK_POLL_SECONDS = 0.05

Row = tuple[Any, ...]
Op = tuple[str, Row]  # one statement and its parameters


class Connection(Protocol):
    """The part of a DB-API connection (sqlite3, psycopg) the store uses."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    """What differs between SQLite and PostgreSQL; everything else is SqlStore's."""

    name: str  # "SQLite", "PostgreSQL"
    where: str  # the store's location for messages, never with a password
    placeholder: str  # "?" or "%s"
    serial_pk: str  # DDL of an auto-numbered integer primary key
    begin_read: str  # starts a transaction that reads one snapshot
    begin_write: str  # starts a transaction that will write
    errors: tuple[type[Exception], ...]  # the driver's exceptions
    meta_exists: str  # a query whose one value is non-zero when the meta table exists
    count_tables: str  # a query whose one value counts the tables of the store's schema or file
    locks_on_connection: bool  # the lock is taken in the store's own session (a server's advisory lock)

    def connect(self, read_only: bool = False) -> Connection:
        """A connection in autocommit mode (the store sends BEGIN and COMMIT); else StoreError.
        `read_only`: one that cannot write (and does not create the store)."""
        ...

    def exists(self) -> bool:
        """Whether the store exists yet; one that does not reads as empty until a write creates it."""
        ...

    def before_migrating(self, tx: Tx) -> None:
        """Runs first in the migration transaction: serialise processes that migrate at once."""
        ...

    def opened(self) -> None:
        """The store is open for writing and is a reconciler store: make it private where it can be."""
        ...

    def lock(self, timeout: float, holder: str, *connection: Callable[[], Connection]) -> AbstractContextManager[None]:
        ...

    def upsert_many(self, tx: Tx, upsert: Upsert, rows: Sequence[Row]) -> None:
        """Write many rows with one upsert, in the dialect's fastest way."""
        ...

    def lost(self, conn: Connection) -> bool:
        """Whether the connection to the database is gone."""
        ...

    def describe(self, exc: Exception, conn: Connection | None) -> str:
        """A driver error as one line, without values or SQL."""
        ...


class Tx:
    """A cursor inside a transaction; translates the `?` placeholders queries are written with."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(self._sql(sql), rows)

    def copy(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """`COPY ... FROM STDIN` of the rows (PostgreSQL)."""
        with self._cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cursor.execute(self._sql(sql), params)
        return list(self._cursor.fetchall())

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None


# ---------------------------------------------------------------------------------------------
# Schema and migrations: each runs once, inside the transaction that opens the store.
# Append new ones; never edit a released one.


def _schema_v1(tx: Tx, dialect: Dialect) -> None:
    for ddl in (
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE providers (name TEXT PRIMARY KEY, type TEXT NOT NULL,"
        " display_name TEXT NOT NULL, icon TEXT, enabled BOOLEAN NOT NULL, base_url TEXT,"
        " settings TEXT)",
        "CREATE TABLE secrets (kind TEXT NOT NULL, owner TEXT NOT NULL, slot TEXT NOT NULL,"
        " ref TEXT, key_id TEXT NOT NULL, ciphertext TEXT NOT NULL, fingerprint TEXT NOT NULL,"
        " PRIMARY KEY (kind, owner, slot))",
        "CREATE TABLE models (organization TEXT NOT NULL, provider TEXT NOT NULL,"
        " model TEXT NOT NULL, display_name TEXT NOT NULL, enabled BOOLEAN NOT NULL,"
        " is_default BOOLEAN NOT NULL, context_limit BIGINT NOT NULL,"
        " compression_threshold INTEGER, config TEXT NOT NULL,"
        " PRIMARY KEY (organization, provider, model))",
        "CREATE TABLE prices (provider_type TEXT NOT NULL, model TEXT NOT NULL,"
        " input BIGINT, output BIGINT, cache_read BIGINT, cache_write BIGINT,"
        " PRIMARY KEY (provider_type, model))",
        "CREATE TABLE overrides (organization TEXT NOT NULL, context TEXT NOT NULL,"
        " provider TEXT NOT NULL, model TEXT NOT NULL, reasoning_effort TEXT,"
        " PRIMARY KEY (organization, context))",
        "CREATE TABLE settings (id TEXT PRIMARY KEY, allow_users BOOLEAN NOT NULL)",
        f"CREATE TABLE history (id {dialect.serial_pk}, started_at TEXT NOT NULL,"
        " finished_at TEXT NOT NULL, who TEXT NOT NULL, tool_version TEXT NOT NULL,"
        " plan TEXT NOT NULL, results TEXT NOT NULL)",
        # who holds the apply lock, by database session (PostgreSQL; SQLite uses its lock file)
        "CREATE TABLE lock_holders (session BIGINT PRIMARY KEY, identity TEXT NOT NULL)",
    ):
        tx.execute(ddl)
    _set_meta(tx, "fingerprint_salt", random.token_hex(32))
    _set_meta(tx, "key_ids", "[]")


def _object_meta_v2(tx: Tx, dialect: Dialect) -> None:
    """Labels and annotations per object, so that `reconciler/protect` outlives its manifest."""
    tx.execute(
        "CREATE TABLE object_meta (kind TEXT NOT NULL, key TEXT NOT NULL, meta TEXT NOT NULL,"
        " PRIMARY KEY (kind, key))"
    )


# the object tables as migration 3 found them: kind -> (table, key columns)
_V3_TABLES = {
    PROVIDER: ("providers", ("name",)),
    MODEL: ("models", ("organization", "provider", "model")),
    PRICE: ("prices", ("provider_type", "model")),
    OVERRIDE: ("overrides", ("organization", "context")),
    SETTINGS: ("settings", ("id",)),
}


def _meta_in_rows_v3(tx: Tx, dialect: Dialect) -> None:
    """Labels and annotations move into their object's row (NULL when it has none): an apply writes
    one row per object instead of two, and a read needs no second table."""
    for table, _ in _V3_TABLES.values():
        tx.execute(f"ALTER TABLE {table} ADD COLUMN meta TEXT")
    moved: dict[str, list[Row]] = {}
    for kind, key, text in tx.rows("SELECT kind, key, meta FROM object_meta"):
        meta = json.loads(text)
        if kind in _V3_TABLES and (meta.get("labels") or meta.get("annotations")):
            moved.setdefault(kind, []).append((text, *json.loads(key)))
    for kind, rows in moved.items():
        table, key = _V3_TABLES[kind]
        tx.executemany(f"UPDATE {table} SET meta = ? WHERE " + " AND ".join(f"{c} = ?" for c in key), rows)
    tx.execute("DROP TABLE object_meta")


def _model_access_v4(tx: Tx, dialect: Dialect) -> None:
    """A model's access list (groups and users by name), NULL when the manifests leave it alone."""
    tx.execute("ALTER TABLE models ADD COLUMN access TEXT")


MIGRATIONS: list[Callable[[Tx, Dialect], None]] = [_schema_v1, _object_meta_v2, _meta_in_rows_v3, _model_access_v4]
SCHEMA_VERSION = len(MIGRATIONS)


def _set_meta(tx: Tx, name: str, value: str) -> None:
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def _record_key_ids(tx: Tx) -> None:
    """Keep meta's list of the encryption key ids in use, checked before a secret is written."""
    in_use = sorted(row[0] for row in tx.rows("SELECT DISTINCT key_id FROM secrets"))
    _set_meta(tx, "key_ids", json.dumps(in_use))


# ---------------------------------------------------------------------------------------------
# Records <-> rows: one table per kind, its key columns first.


_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode  # json.dumps builds one per call


def _dump(value: Any) -> str | None:
    return None if value is None else _ENCODE(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _settings_json(settings: dict[str, Any] | None) -> str | None:
    """Provider settings without their secret slots (those live in the secrets table)."""
    if settings is None:
        return None
    return _dump({
        variant: {k: v for k, v in body.items() if not isinstance(v, Secret)}
        for variant, body in settings.items()
    })


def _config_json(config: dict[str, Any] | None) -> str | None:
    return _dump(config or {})


@dataclass(frozen=True)
class Upsert:
    """INSERT of `columns` (the key's first) that updates the row when the key is already there."""

    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]

    @cached_property
    def sql(self) -> str:
        """The statement for one row, with `?` placeholders."""
        placeholders = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({placeholders}) {self.on_conflict}"

    @cached_property
    def on_conflict(self) -> str:
        updates = ", ".join(f"{name} = excluded.{name}" for name in self.columns[len(self.key):])
        return f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"


@dataclass(frozen=True)
class _Column:
    name: str
    field: str  # the record's field
    encode: Callable[[Any], Any] | None = None
    decode: Callable[[Any], Any] | None = None
    optional: bool = False  # NULL: the record has no such field (the store leaves it alone)


@dataclass(frozen=True)
class _Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[_Column, ...]

    def to_row(self, record: Record) -> Row:
        get = record.get
        return tuple([encode(get(name)) if encode else get(name) for name, encode in self._encoders])

    def from_row(self, row: Row) -> Record:
        record = dict(zip(self._fields, row, strict=True))
        for name, decode in self._decoders:
            record[name] = decode(record[name])
        for name in self._optional:
            if record[name] is None:
                del record[name]
        return record

    @cached_property
    def _optional(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns if c.optional)

    @cached_property
    def _fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns)

    @cached_property
    def _encoders(self) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
        return tuple((c.field, c.encode) for c in self.columns)

    @cached_property
    def _decoders(self) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        return tuple((c.field, c.decode) for c in self.columns if c.decode)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return self.key + tuple(c.name for c in self.columns)

    @cached_property
    def select_sql(self) -> str:
        """The key columns, the record's columns, and last the object's metadata."""
        return f"SELECT {', '.join(self.names)}, meta FROM {self.name}"

    @cached_property
    def upsert(self) -> Upsert:
        """Key, record and metadata (see `upsert_keeping_meta`)."""
        return Upsert(self.name, self.key, (*self.names, "meta"))

    @cached_property
    def upsert_keeping_meta(self) -> Upsert:
        """Key and record; the stored metadata stays as it is."""
        return Upsert(self.name, self.key, self.names)

    @cached_property
    def delete_sql(self) -> str:
        return f"DELETE FROM {self.name} WHERE " + " AND ".join(f"{c} = ?" for c in self.key)


TABLES: dict[str, _Table] = {
    PROVIDER: _Table("providers", ("name",), (
        _Column("type", "type"),
        _Column("display_name", "display_name"),
        _Column("icon", "icon"),
        _Column("enabled", "enabled", decode=bool),
        _Column("base_url", "base_url"),
        _Column("settings", "settings", _settings_json, _load),
    )),
    MODEL: _Table("models", ("organization", "provider", "model"), (
        _Column("display_name", "display_name"),
        _Column("enabled", "enabled", decode=bool),
        _Column("is_default", "default", decode=bool),
        _Column("context_limit", "context_limit"),
        _Column("compression_threshold", "compression_threshold"),
        _Column("config", "config", _config_json, json.loads),
        _Column("access", "access", _dump, _load, optional=True),
    )),
    PRICE: _Table("prices", ("provider_type", "model"), (
        _Column("input", "input"),
        _Column("output", "output"),
        _Column("cache_read", "cache_read"),
        _Column("cache_write", "cache_write"),
    )),
    OVERRIDE: _Table("overrides", ("organization", "context"), (
        _Column("provider", "provider"),
        _Column("model", "model"),
        _Column("reasoning_effort", "reasoning_effort"),
    )),
    SETTINGS: _Table("settings", ("id",), (_Column("allow_users", "allow_users", decode=bool),)),
}

UPSERT_SECRET = Upsert(
    "secrets", ("kind", "owner", "slot"), ("kind", "owner", "slot", "ref", "key_id", "ciphertext", "fingerprint")
)
# each upsert statement the writer emits -> its description, for a dialect's way of writing many rows
UPSERTS: dict[str, Upsert] = {
    u.sql: u for u in (UPSERT_SECRET, *(t.upsert for t in TABLES.values()),
                       *(t.upsert_keeping_meta for t in TABLES.values()))
}
RENAME_SECRET = "UPDATE secrets SET ref = ? WHERE kind = ? AND owner = ? AND slot = ?"
DELETE_SECRET = "DELETE FROM secrets WHERE kind = ? AND owner = ? AND slot = ?"
DELETE_SECRETS_OF = "DELETE FROM secrets WHERE kind = ? AND owner = ?"
# a model moved in place, and the overrides that name it with it
MOVE_MODEL = ("UPDATE models SET provider = ?, model = ?"
              " WHERE organization = ? AND provider = ? AND model = ?")
MOVE_OVERRIDES = ("UPDATE overrides SET provider = ?, model = ?"
                  " WHERE organization = ? AND provider = ? AND model = ?")


def _place_secret(record: Record, slot: str, secret: Secret) -> None:
    group, *path = slot.split("/")
    if group == "api_keys":
        record["api_keys"].append(secret)  # slots arrive in position order
    else:
        settings = record["settings"] = record.get("settings") or {}
        settings.setdefault(path[0], {})[path[1]] = secret


def _slot_order(slot: str) -> tuple[str, int, str]:
    group, _, rest = slot.partition("/")
    return (group, int(rest), "") if group == "api_keys" else (group, 0, rest)


# ---------------------------------------------------------------------------------------------


def holder_identity(holder: str) -> dict[str, Any]:
    """Who takes a lock, as a waiter will name it."""
    return {"holder": holder, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()}


def lock_message(identity: Mapping[str, Any] | None, timeout: float) -> str:
    who = "another process (it did not say who)"
    if identity:
        who = str(identity.get("holder") or "an unnamed holder")
        if "pid" in identity:
            who += (f" (pid {identity['pid']} on host {identity.get('host', '?')}"
                    f" since {identity.get('since', '?')})")
    return f"the store is locked by {who}; gave up after {timeout:g} s"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SqlStore:
    """A transactional Store with at-rest encrypted secrets and an apply history."""

    capabilities = Capabilities(transactional=True, secret_view="fingerprint", keeps_metadata=True)

    def __init__(
        self,
        url: str,
        dialect: Dialect,
        *,
        environ: Mapping[str, str] | None = None,
        read_only: bool = False,
        **unknown: Any,
    ) -> None:
        if unknown:
            names = ", ".join(sorted(unknown))
            raise UsageError(f"unknown option(s) for a {dialect.name} store: {names}")
        self.url = url  # for messages: the subclass passes it without a password
        self._dialect = dialect
        self._environ = environ  # None: os.environ, read when a secret is written
        self._conn: Connection | None = None  # opened on first use: a plan never creates a store
        self._salt = b""
        # plan, export and the other readers never write: no tables created, nothing migrated, and
        # a store without reconciler's tables reads as empty (one holding other tables is refused)
        self._read_only = read_only
        self._no_tables = False
        if dialect.exists():
            self._connection()

    def init(self) -> None:
        """Create and migrate the store now (otherwise the first write does)."""
        self._connection()

    def _absent(self) -> bool:
        """The store does not exist yet (and reading it must not create it)."""
        if self._read_only and self._conn is None and self._dialect.exists():
            self._connection()
        return self._no_tables or (self._conn is None and not self._dialect.exists())

    def _connection(self) -> Connection:
        """The open connection, creating and migrating the store on first use (read-only: neither)."""
        if self._conn is None:
            self._conn = self._dialect.connect(self._read_only)
            try:
                if self._read_only:
                    self._salt = bytes.fromhex(self._open_read_only())
                    return self._conn
                self._salt = bytes.fromhex(self._open())
                self._dialect.opened()
            except BaseException:
                self._conn.close()
                self._conn = None
                raise
        return self._conn

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _open(self) -> str:
        """Bring the schema up to date; returns the fingerprint salt."""
        doing = f"cannot open the {self._dialect.name} store at {self._dialect.where}"
        with self._transaction(doing, write=False) as tx:
            version = self._schema_version(tx)
            if version == SCHEMA_VERSION:
                return str(tx.value("SELECT value FROM meta WHERE name = 'fingerprint_salt'"))
        with self._transaction(doing, write=True) as tx:
            self._dialect.before_migrating(tx)
            version = self._schema_version(tx)  # another process may have migrated meanwhile
            if version == 0 and tx.value(self._dialect.count_tables):
                raise StoreError(
                    f"{self._dialect.where} holds tables but is not a reconciler store: it is not adopted; "
                    "give the URL of a reconciler store (or of a new, empty one)")
            for migrate in MIGRATIONS[version:]:
                migrate(tx, self._dialect)
            _set_meta(tx, "schema_version", str(SCHEMA_VERSION))
            return str(tx.value("SELECT value FROM meta WHERE name = 'fingerprint_salt'"))

    def _open_read_only(self) -> str:
        """Check the schema without changing it; returns the fingerprint salt ("" when empty)."""
        doing = f"cannot read the {self._dialect.name} store at {self._dialect.where}"
        with self._transaction(doing, write=False) as tx:
            version = self._schema_version(tx)
            if version == 0:
                others = tx.value(self._dialect.count_tables)
                if others:
                    raise StoreError(
                        f"{self._dialect.where} holds {others} table(s) but is not a reconciler store: "
                        "give the URL of a reconciler store (or a new one)")
                self._no_tables = True
                return ""
            if version < SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self._dialect.where} has schema version {version}; this reconciler "
                    f"reads {SCHEMA_VERSION}: `reconciler apply` migrates it (plan never writes)")
            return str(tx.value("SELECT value FROM meta WHERE name = 'fingerprint_salt'"))

    def _schema_version(self, tx: Tx) -> int:
        if not tx.value(self._dialect.meta_exists):
            return 0
        raw = tx.value("SELECT value FROM meta WHERE name = 'schema_version'")
        try:
            version = int(str(raw or 0).strip())
        except ValueError:
            raise StoreError(f"the store at {self._dialect.where} records a schema version that is not a "
                             f"number ({str(raw)[:40]!r}): it is not a store this tool wrote") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self._dialect.where} was created by a newer reconciler (schema "
                f"version {version}; this one knows up to {SCHEMA_VERSION}): upgrade reconciler"
            )
        return version

    @contextmanager
    def _transaction(self, doing: str, write: bool) -> Iterator[Tx]:
        """One transaction; a driver error in it becomes a one-line StoreError `doing: reason`."""
        dialect = self._dialect
        try:
            tx = Tx(self._connection().cursor(), dialect.placeholder)
            tx.execute(dialect.begin_write if write else dialect.begin_read)
        except dialect.errors as exc:
            raise StoreError(f"{doing}: {dialect.describe(exc, self._conn)}") from None
        try:
            yield tx
        except dialect.errors as exc:
            self._rollback(tx)
            undone = " (rolled back: nothing was written)" if write else ""
            raise StoreError(f"{doing}{undone}: {dialect.describe(exc, self._conn)}") from None
        except BaseException:
            self._rollback(tx)
            raise
        try:
            tx.execute("COMMIT")
        except dialect.errors as exc:
            reason = dialect.describe(exc, self._conn)
            if write and self._conn is not None and dialect.lost(self._conn):
                raise StoreError(
                    f"{doing} while committing, so the changes may or may not have been written"
                    f" (run plan to see): {reason}"
                ) from None
            self._rollback(tx)
            undone = " (rolled back: nothing was written)" if write else ""
            raise StoreError(f"{doing}{undone}: {reason}") from None

    def _rollback(self, tx: Tx) -> None:
        with contextlib.suppress(*self._dialect.errors):  # a lost connection took it along
            tx.execute("ROLLBACK")

    # -- the Store protocol ---------------------------------------------------------------------

    def secret_view(self, plaintext: str, group: str) -> str | None:
        if self._conn is None:
            return None  # no store yet: nothing stored to compare with
        return fingerprint(self._salt, plaintext)

    def change_token(self) -> Any:
        """A value that differs whenever the store may have changed, or None when the dialect has
        no cheap, reliable one (reconciler.noop). Taken before and after a read: equal tokens
        mean the read saw one state."""
        files_token = getattr(self._dialect, "change_token", None)
        if files_token is None or self._absent():
            return None
        marks = files_token()
        if marks is None:
            return None
        doing = f"cannot read the store at {self._dialect.where}"
        with self._transaction(doing, write=False) as tx:
            last = tx.value("SELECT coalesce(max(id), 0) FROM history")
        return (marks, last, files_token())

    def lock(self, timeout: float, holder: str) -> AbstractContextManager[None]:
        """The dialect's lock; a server's is taken on this store's own connection, the one that
        writes, so that losing it loses the writes too (see PostgresDialect.lock)."""
        if self._dialect.locks_on_connection:
            return self._dialect.lock(timeout, holder, self._connection)
        return self._dialect.lock(timeout, holder)

    def read(self) -> State:
        state = State(
            default_organization=DEFAULT_ORGANIZATION,
            default_prices={key: dict(record) for key, record in default_price_book().items()},
        )
        if self._absent():
            state.serial = "applies:0"  # as the store will read once the first apply creates it
            return state  # created by the first apply, not by reading
        doing = f"cannot read the store at {self._dialect.where}"
        with self._transaction(doing, write=False) as tx:
            for kind, table in TABLES.items():
                width = len(table.key)
                records = state.objects[kind] = {}
                for row in tx.rows(table.select_sql):
                    key = row[:width]
                    records[key] = table.from_row(row[width:-1])
                    if row[-1] is not None:
                        meta = json.loads(row[-1])
                        state.meta[(kind, key)] = object_meta(meta.get("labels"), meta.get("annotations"))
            slots = tx.rows(
                "SELECT owner, slot, ref, fingerprint FROM secrets WHERE kind = ?", (PROVIDER,)
            )
            state.serial = f"applies:{tx.value('SELECT coalesce(max(id), 0) FROM history')}"
        providers = state.of(PROVIDER)
        for record in providers.values():
            record["api_keys"] = []
        for owner, slot, ref, view in sorted(slots, key=lambda r: (r[0], _slot_order(r[1]))):
            if (owner,) in providers:
                _place_secret(providers[(owner,)], slot, Secret(ref=ref, view=view))
        return state

    def apply(
        self,
        changes: Sequence[Change],
        secrets: Mapping[str, str],
        run: RunInfo,
        progress: ProgressCallback | None = None,
    ) -> list[ChangeResult]:
        """All changes and the history row in one transaction, or nothing; then `progress`.

        An empty list writes nothing at all, not even history.
        """
        if not changes:
            return []
        started = _now()
        results = [ChangeResult(change, APPLIED) for change in changes]
        doing = f"apply to the {self._dialect.name} store at {self._dialect.where} failed"
        with self._transaction(doing, write=True) as tx:
            writer = _Writer(tx, self._salt, self._environ)
            ops = writer.plan(changes, secrets)
            for sql, group in itertools.groupby(ops, key=lambda op: op[0]):  # batch runs of one SQL
                rows = [params for _, params in group]
                if len(rows) == 1:
                    tx.execute(sql, rows[0])
                elif sql in UPSERTS:
                    self._dialect.upsert_many(tx, UPSERTS[sql], rows)
                else:
                    tx.executemany(sql, rows)
            if writer.secrets_touched:
                _record_key_ids(tx)
            tx.execute(
                "INSERT INTO history (started_at, finished_at, who, tool_version, plan, results)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (started, _now(), run.who, run.tool_version,
                 _dump({**run.plan, "source": run.source} if run.source else run.plan),
                 _dump([_history_result(result) for result in results])),
            )
        if progress is not None:
            for result in results:
                progress(result)
        return results

    def refusals(self, changes: Sequence[Change]) -> dict[str, list[str]]:
        return {}  # a SQL store takes every kind of change its schema has

    def read_access(self, state: State, models: Sequence[Key]) -> None:
        return None  # access lists are columns, read with their models; any name is taken

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- beyond the protocol --------------------------------------------------------------------

    def rekey(self, environ: Mapping[str, str] | None = None) -> int:
        """Re-encrypt every stored secret with the first configured key; returns how many moved."""
        if self._absent():
            return 0
        cipher = Cipher.from_env(self._environ if environ is None else environ)
        current = cipher.key_ids[0]
        doing = f"rekeying the store at {self._dialect.where} failed"
        try:
            with self._transaction(doing, write=True) as tx:
                updates = []
                for kind, owner, slot, kid, token in tx.rows(
                    "SELECT kind, owner, slot, key_id, ciphertext FROM secrets"
                ):
                    if kid != current:
                        context = f"{kind}/{owner}/{slot}"
                        sealed = cipher.encrypt(cipher.decrypt(token, context), context)
                        updates.append((current, sealed, kind, owner, slot))
                if updates:
                    tx.executemany(
                        "UPDATE secrets SET key_id = ?, ciphertext = ?"
                        " WHERE kind = ? AND owner = ? AND slot = ?",
                        updates,
                    )
                    _record_key_ids(tx)
        except SecretError as exc:
            raise SecretError(f"rekeying changed nothing: {exc}") from None
        return len(updates)

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest applies, newest first."""
        if self._absent():
            return []
        doing = f"cannot read the history of the store at {self._dialect.where}"
        with self._transaction(doing, write=False) as tx:
            rows = tx.rows(
                "SELECT id, started_at, finished_at, who, tool_version, plan, results FROM history"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        out = []
        for row in rows:
            plan = json.loads(row[5])
            source = plan.pop("source", None) if isinstance(plan, dict) else None  # kept beside the plan
            source = source if isinstance(source, dict) else {}
            out.append({"id": row[0], "started_at": row[1], "finished_at": row[2], "who": row[3],
                        "tool_version": row[4], "commit": source.get("commit"), "run_url": source.get("run_url"),
                        "plan": plan, "results": json.loads(row[6])})
        return out


def _history_result(result: ChangeResult) -> dict[str, Any]:
    """What history keeps of a result: which change, and how it went (its diff is in the plan)."""
    out = {"id": result.change.id, "action": result.change.action, "status": result.status}
    if result.error:
        out["error"] = result.error
    return out


class _Writer:
    """Turns a change list into statements, inside the apply transaction, before any of them runs.

    Whatever can refuse an apply without the database's help (a secret value
    not given, no encryption key, the wrong key) does so here, so that such an
    apply writes nothing.
    """

    def __init__(self, tx: Tx, salt: bytes, environ: Mapping[str, str] | None) -> None:
        self._tx = tx
        self._salt = salt
        self._environ = environ
        self._cipher: Cipher | None = None
        self._stored: dict[str, dict[str, str | None]] = {}  # owner -> slot -> ref
        query = "SELECT owner, slot, ref FROM secrets WHERE kind = ?"
        for owner, slot, ref in tx.rows(query, (PROVIDER,)):
            self._stored.setdefault(owner, {})[slot] = ref
        self.secrets_touched = False  # then the key ids in use are recomputed
        # (id(labels), id(annotations)) -> (labels, annotations, their JSON): the objects of one
        # document share them (a price catalog's prices, a model and its price); the held
        # references keep the ids from being reused while the writer lives
        self._meta_texts: dict[tuple[int, int], tuple[Any, Any, str]] = {}

    def plan(self, changes: Sequence[Change], secrets: Mapping[str, str]) -> list[Op]:
        ops: list[Op] = []
        # after every record (and every DELETE_SECRETS_OF), so that runs of one statement stay long
        secret_ops: list[Op] = []
        for change in changes:
            table = TABLES.get(change.kind)
            if table is None or change.action not in (CREATE, UPDATE, DELETE, REPLACE):
                raise StoreError(f"{change.id}: a SQL store cannot {change.action} a {change.kind}")
            if change.action in (DELETE, REPLACE):
                ops.append((table.delete_sql, change.key))
                if change.kind == PROVIDER:
                    ops.append((DELETE_SECRETS_OF, (PROVIDER, key_text(change.key))))
                    self._stored.pop(key_text(change.key), None)
                    self.secrets_touched = True
            if change.moved_from is not None:
                old = change.moved_from
                ops.append((MOVE_MODEL, (*change.key[1:], *old)))
                ops.append((MOVE_OVERRIDES, (*change.key[1:], *old)))
            if change.action != DELETE:
                if change.after is None:
                    raise StoreError(f"{change.id}: a {change.action} without the new record")
                row = change.key + table.to_row(change.after)
                if change.meta is None:  # the plan leaves the stored labels and annotations alone
                    ops.append((table.upsert_keeping_meta.sql, row))
                else:
                    ops.append((table.upsert.sql, (*row, self._meta_json(change.meta))))
                if change.kind == PROVIDER:
                    secret_ops += self._secret_ops(change, change.after, secrets)
        return ops + secret_ops

    def _meta_json(self, meta: dict[str, Any]) -> str | None:
        """An object's labels and annotations as stored: NULL when it has none."""
        labels, annotations = meta.get("labels"), meta.get("annotations")
        if not labels and not annotations:
            return None
        known = self._meta_texts.get((id(labels), id(annotations)))
        if known is None:
            text = _ENCODE(object_meta(labels, annotations))
            known = self._meta_texts[(id(labels), id(annotations))] = (labels, annotations, text)
        return known[2]

    def _secret_ops(self, change: Change, after: Record, secrets: Mapping[str, str]) -> list[Op]:
        """Write the slots whose group is sent (all of them on create/replace); keep the others."""
        owner = key_text(change.key)
        stored = self._stored.get(owner, {})
        fresh = change.action in (CREATE, REPLACE)
        ops: list[Op] = []
        kept: dict[str, str | None] = {}
        for slot, group, secret in secret_slot_paths(after):
            kept[slot] = secret.ref
            if not fresh and group not in change.send_secrets and slot in stored:
                if secret.ref is not None and stored[slot] != secret.ref:  # renamed reference
                    ops.append((RENAME_SECRET, (secret.ref, PROVIDER, owner, slot)))
                continue
            plaintext = secrets.get(secret.ref) if secret.ref else None
            if plaintext is None:
                raise SecretError(
                    f"{change.id}: the value of secret reference {secret.ref or '(none)'} "
                    "was not given to apply"
                )
            cipher = self._cipher_for_writing()
            sealed = cipher.encrypt(plaintext, f"{PROVIDER}/{owner}/{slot}")
            view = fingerprint(self._salt, plaintext)
            row = (PROVIDER, owner, slot, secret.ref, cipher.key_ids[0], sealed, view)
            ops.append((UPSERT_SECRET.sql, row))
        ops += [(DELETE_SECRET, (PROVIDER, owner, slot)) for slot in stored if slot not in kept]
        if ops:
            self.secrets_touched = True
        self._stored[owner] = kept
        return ops

    def _cipher_for_writing(self) -> Cipher:
        if self._cipher is None:
            cipher = Cipher.from_env(self._environ)
            stored = self._tx.value("SELECT value FROM meta WHERE name = 'key_ids'")
            in_use = json.loads(stored or "[]")
            if in_use and not set(in_use) & set(cipher.key_ids):
                raise SecretError(
                    f"{ENCRYPTION_KEY_ENV} holds none of the keys that encrypted this store's "
                    f"secrets (key ids {', '.join(in_use)}; configured: "
                    f"{', '.join(cipher.key_ids)}): set the key the store was written with, "
                    "or list it after a new key to rotate"
                )
            self._cipher = cipher
        return self._cipher
