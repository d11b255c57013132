"""The cache: what loading and the schema pass made of each manifest file, and the no-change plans.

It lives in `.reconciler/cache/` under the directory reconciler runs in (beside the default
store; `.reconciler/` is not committed), or in `$RECONCILER_CACHE_DIR`. `--no-cache` or
`RECONCILER_CACHE=off` bypasses it. It is only ever a shortcut to the result a cold run gives:

- `files-<tool>.pack`: per file, keyed by its path and the digest of its bytes, the documents it
  holds, which of them passed the schema pass and the diagnostics loading and the schema pass
  gave. `<tool>` digests the tool's version, its source files and its schemas: another tool or
  another schema never reads this pack. A file holding a secret where a reference belongs
  (RC202) is never cached.
- `run-<key>`: a plan or apply that found nothing to change, keyed by the command, the working
  directory, the paths, the store and the options. It keeps each file's (size, mtime, ctime,
  inode), the store's change token, the secret references with a digest of the store's keyed
  fingerprints of their values (never a value), and what the run printed besides "No changes".

Every file is written to a temporary name and renamed over the old one, so that a reader sees a
whole file or none and two processes writing at once leave one of their files. A file that is
truncated, corrupt, from another version or holds anything but plain data is ignored (and
rewritten). Nothing read from the cache is executed: unpickling admits only data types.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import stat
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

CACHE_ENV = "RECONCILER_CACHE"
CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
DEFAULT_DIR = os.path.join(".reconciler", "cache")
MAGIC = b"reconciler-cache 2\n"
NEVER_CACHED = frozenset({"RC202"})  # a secret value in a manifest: not copied anywhere else
RACY_SECONDS = 2.0  # a file changed this recently may change again within one timestamp tick
MAX_SPARE_ENTRIES = 20_000  # entries of files this run did not read that a pack keeps, at most...
MIN_SPARE_ENTRIES = 1_000  # ... and no more than this run's own count (or this many)

_switched_off = False


def switch_off() -> None:
    """`--no-cache`: this process neither reads nor writes the cache."""
    global _switched_off
    _switched_off = True


def enabled() -> bool:
    setting = os.environ.get(CACHE_ENV, "").strip().lower()
    return not _switched_off and setting not in ("off", "0", "false", "no")


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_DIR)


def digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=20).digest()


@cache
def tool_id() -> str:
    """Which tool made an entry: its version, its source files (by size and mtime: an edited or
    reinstalled tool is another tool) and the bytes of its schemas."""
    from reconciler import __version__
    from reconciler.manifest.loader import KINDS
    from reconciler.validate.schema import SCHEMA_FILES, schema_dir

    h = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent
    for root, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".py", ".json")):
                info = os.stat(os.path.join(root, name))
                h.update(f"{os.path.relpath(os.path.join(root, name), package)}:{info.st_size}:"
                         f"{info.st_mtime_ns}\n".encode())
    h.update(schema_digest(tuple(str(schema_dir() / SCHEMA_FILES[kind]) for kind in KINDS)).encode())
    return h.hexdigest()[:24]


def schema_digest(files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for path in files:
        try:
            h.update(Path(path).read_bytes())
        except OSError:
            h.update(b"(missing)")
        h.update(b"\0")
    return h.hexdigest()


# -- files on disk ---------------------------------------------------------------------------------

def write_atomic(path: Path, payload: bytes) -> None:
    """`payload` behind a header and its checksum, by rename; a cache that cannot be written is
    only slower, never an error."""
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def read_checked(path: Path) -> bytes | None:
    """The payload of a cache file, or None when it is missing, truncated or corrupt."""
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError:
        return None
    head = len(MAGIC) + 32
    if not blob.startswith(MAGIC) or len(blob) < head:
        return None
    payload = blob[head:]
    if hashlib.sha256(payload).digest() != blob[len(MAGIC):head]:
        return None
    return payload


class _DataOnly(pickle.Unpickler):
    """Unpickles plain data and the few value types manifests and diagnostics are made of."""

    ALLOWED = {
        ("reconciler.diagnostics", "Diagnostic"),
        ("reconciler.manifest.loader", "ExactFloat"),
        ("datetime", "date"), ("datetime", "datetime"), ("datetime", "timedelta"), ("datetime", "timezone"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not cache data")


def loads(payload: bytes | None) -> Any:
    """The data in `payload`, or None when it is not cache data."""
    if payload is None:
        return None
    try:
        return _DataOnly(io.BytesIO(payload)).load()
    except Exception:  # whatever a corrupt pickle raises: the entry is ignored and rebuilt
        return None


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


# -- per file: loading and the schema pass ----------------------------------------------------------

Key = tuple[str, bytes]  # (the path as given, the digest of its bytes)


class FilePack:
    """The entries of one tool, in one file; `entry` bytes are `dumps((docs, problems))` where
    docs are (index, data, unsafe_text, schema-valid, line) tuples."""

    def __init__(self) -> None:
        self.path = cache_dir() / f"files-{tool_id()}.pack"
        found = loads(read_checked(self.path))
        self._old: dict[Key, bytes] = found if isinstance(found, dict) else {}
        self._corrupt = self.path.exists() and not isinstance(found, dict)
        self._used: dict[Key, bytes] = {}
        self._changed = False
        self.hits = 0

    @property
    def empty(self) -> bool:
        return not self._old

    def get(self, key: Key) -> tuple[list[tuple[int, Any, bool, bool]], list[Any]] | None:
        blob = self._old.get(key)
        entry = loads(blob) if isinstance(blob, bytes) else None
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], list)
                and isinstance(entry[1], list)):
            return None
        self._used[key] = blob  # type: ignore[assignment]
        self.hits += 1
        return entry

    def put(self, key: Key, blob: bytes | None) -> None:
        if blob is not None:
            self._used[key] = blob
            self._changed = True

    def save(self) -> None:
        """Keep what this run used, and entries of files it did not read (another subset of the
        repository) up to as many as it used; entries of its files at other contents are dropped."""
        paths = {path for path, _ in self._used}
        spare = [(k, v) for k, v in self._old.items() if k[0] not in paths and k not in self._used]
        stale = len(self._old) - len(spare) - sum(k in self._old for k in self._used)
        room = min(MAX_SPARE_ENTRIES, max(len(self._used), MIN_SPARE_ENTRIES))
        if not (self._changed or stale or self._corrupt or len(spare) > room):
            return
        kept = dict(self._used)
        kept.update(spare[:room])  # the previous run's own entries come first
        write_atomic(self.path, dumps(kept))
        _remove_other_tools(self.path)


def _remove_other_tools(current: Path) -> None:
    with contextlib.suppress(OSError):
        for other in current.parent.glob("files-*.pack"):
            if other != current:
                other.unlink()


# -- per run: plans that found nothing to change ----------------------------------------------------

FileStat = tuple[str, int, int, int, int, bytes | None]  # path, size, mtime, ctime, inode, digest if racy


def stat_files(files: Sequence[str]) -> tuple[list[tuple[str, int, int, int, int]], int] | None:
    """Each file's (path, size, mtime, ctime, inode) and when they were taken; None if one is
    not a plain file that can be stat'ed (standard input, a FIFO)."""
    taken = time.time_ns()
    found = []
    for path in files:
        try:
            info = os.stat(path)
        except OSError:
            return None
        if path == "-" or not stat.S_ISREG(info.st_mode):
            return None
        found.append((path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino))
    return found, taken


def racy(ctime_ns: int, taken_ns: int) -> bool:
    """Changed so recently before `taken_ns` that a later change could keep the same timestamps."""
    return ctime_ns >= taken_ns - int(RACY_SECONDS * 1e9)


def run_key(*parts: Any) -> str:
    return hashlib.sha256(repr((tool_id(), os.getcwd(), parts)).encode()).hexdigest()[:32]


def load_run(key: str) -> dict[str, Any] | None:
    found = loads(read_checked(cache_dir() / f"run-{key}"))
    return found if isinstance(found, dict) else None


def save_run(key: str, record: dict[str, Any]) -> None:
    write_atomic(cache_dir() / f"run-{key}", dumps(record))


def forget_run(key: str) -> None:
    with contextlib.suppress(OSError):
        (cache_dir() / f"run-{key}").unlink()
