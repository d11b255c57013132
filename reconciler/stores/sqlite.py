"""The SQLite dialect: an embedded store in one file (mode 0600), locked by flock on `<db>.lock`."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from reconciler.errors import LockError, StoreError, UsageError
from reconciler.stores.sql import (
    LOCK_POLL_SECONDS,
    Connection,
    Row,
    SqlStore,
    Tx,
    Upsert,
    holder_identity,
    lock_message,
)

PREFIX = "sqlite:///"
BUSY_TIMEOUT_SECONDS = 30.0


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative/path.db` (from the cwd) or `sqlite:////absolute/path.db` -> a path."""
    if not url.lower().startswith(PREFIX) or "?" in url or "#" in url or not url[len(PREFIX):]:
        from reconciler.stores import redact_store_url

        raise UsageError(
            f"bad SQLite store URL {redact_store_url(url)!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    path = Path(unquote(url[len(PREFIX):])).absolute()
    text = str(path)
    if "\x00" in text:
        raise UsageError("bad SQLite store URL: the path holds a NUL character")
    if len(os.fsencode(text)) > 4095 or any(len(os.fsencode(part)) > 255 for part in path.parts):
        raise UsageError("bad SQLite store URL: the path is longer than a file system allows")
    return path


class SqliteDialect:
    name = "SQLite"
    locks_on_connection = False  # a lock file beside the store
    placeholder = "?"
    serial_pk = "INTEGER PRIMARY KEY"
    begin_read = "BEGIN"
    begin_write = "BEGIN IMMEDIATE"  # the write lock first: a writer never fails halfway when busy
    errors: tuple[type[Exception], ...] = (sqlite3.Error, OverflowError)  # a number SQLite cannot store
    meta_exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    count_tables = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self.lock_path = path.with_name(path.name + ".lock")

    def connect(self, read_only: bool = False) -> Connection:
        try:
            if read_only:  # opened as it is: not created, not chmod'ed, no symlink followed
                _refuse_links(self.path)
                uri = f"file:{quote(str(self.path))}?mode=ro"
                return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
            os.close(_private_file(self.path))
            return sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreError(f"cannot open the SQLite store at {self.where}: {reason}") from None

    def exists(self) -> bool:
        return self.path.exists()

    def change_token(self) -> tuple[Any, ...] | None:
        """The stat (size, mtime, ctime, inode) of the database file and of its -wal and -journal
        files, and the database header (its change counter, schema cookie, page count): any write,
        by anyone, moves one of them. A file changed in the last two seconds gives None, since a
        second write could keep its timestamps and size (and WAL mode need not bump the counter)."""
        now = time.time_ns()
        marks: list[Any] = []
        for suffix in ("", "-wal", "-journal"):
            try:
                info = os.stat(f"{self.path}{suffix}")
            except FileNotFoundError:
                marks.append(None)
                continue
            except OSError:
                return None
            if max(info.st_ctime_ns, info.st_mtime_ns) >= now - 2_000_000_000:
                return None
            marks.append((info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
        try:
            with open(self.path, "rb") as fh:
                marks.append(fh.read(100))
        except OSError:
            return None
        return tuple(marks)

    def before_migrating(self, tx: Tx) -> None:
        """BEGIN IMMEDIATE already serialises writers."""

    def opened(self) -> None:
        """A reconciler store (created or checked by now) whose mode was widened is made private again."""
        try:
            if not self.path.is_symlink() and stat.S_IMODE(self.path.stat().st_mode) != 0o600:
                os.chmod(self.path, 0o600, follow_symlinks=False)
        except (OSError, NotImplementedError):
            pass

    def lost(self, conn: Connection) -> bool:
        return False  # a file does not go away mid-transaction

    def describe(self, exc: Exception, conn: Connection | None) -> str:
        return str(exc) or type(exc).__name__

    def lock(self, timeout: float, holder: str) -> AbstractContextManager[None]:
        return file_lock(self.lock_path, timeout, holder)

    def upsert_many(self, tx: Tx, upsert: Upsert, rows: Sequence[Row]) -> None:
        tx.executemany(upsert.sql, rows)  # in-process: nothing beats it


def _private_file(path: Path) -> int:
    """Open a regular file only its owner may read, creating it (mode 0600) and its directory;
    returns its fd. A symbolic link is never followed, and a file this tool did not create is
    never chmod'ed: a wrong path must not change another file's mode or contents."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:  # what mkdir says when a file stands where a directory must be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent)) from None
    flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        _refuse_links(path)
        fd = os.open(path, flags)
        created = False
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if created and stat.S_IMODE(mode) != 0o600:  # a umask widened it
            os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


def _refuse_links(path: Path) -> None:
    if path.is_symlink():
        raise OSError(errno.ELOOP, "is a symbolic link (give the path of the file itself)", str(path))


def _read_identity(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class SqliteStore(SqlStore):
    """`sqlite:///path.db`: the embedded store."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, SqliteDialect(sqlite_path(url)), **options)


@contextmanager
def file_lock(lock_path: Path, timeout: float, holder: str) -> Iterator[None]:
    """An exclusive flock on `lock_path` (mode 0600) holding the holder's identity; waits up to
    `timeout` s, then LockError naming the holder. The OS releases it when a holder is killed."""
    try:
        fd = _private_file(lock_path)
    except OSError as exc:
        reason = exc.strerror
        raise StoreError(f"cannot create the lock file {lock_path}: {reason}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder_was = _read_identity(lock_path)
                    raise LockError(lock_message(holder_was, timeout)) from None
                time.sleep(min(LOCK_POLL_SECONDS, remaining))
        identity = json.dumps(holder_identity(holder)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, identity, 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock (as the OS does when a holder is killed)
