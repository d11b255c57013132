"""Progress of a long apply: on a terminal `[i/n] action id`, one line rewritten as changes
complete; in a log (CI, cron) a line every few seconds with counts and elapsed time.

Stores report each change through a `ProgressCallback` as it completes (the
SQL stores after their commit, all at once; the Coder store as it goes), but
no store says how many changes to expect. `ObservedStore` wraps any store and
hands the count to `on_apply` before passing the changes on, so the printer
knows its total whatever store is behind it. Nothing here writes to a
terminal: the CLI injects the writer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager

from reconciler.changes import APPLIED, Change, ChangeResult
from reconciler.state import Key, State
from reconciler.stores.base import Capabilities, ProgressCallback, RunInfo, Store

CLEAR_LINE = "\r\x1b[K"


class Progress:
    """Writes `[i/n] action id` over the previous line; `finish` clears it."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        self._write(f"{CLEAR_LINE}applying {total} change{'' if total == 1 else 's'}…")

    def __call__(self, result: ChangeResult) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {result.change.action} {result.change.id}"
        if result.status != APPLIED:
            line += f" ({result.status})"
        self._write(CLEAR_LINE + line)

    def finish(self) -> None:
        if self.total:
            self._write(CLEAR_LINE)


class LogProgress:
    """Off a terminal: nothing for a short apply, then every `interval` seconds one line,
    `Still applying... [12/340 done, 20s elapsed]`, whether or not a change completed since
    (a slow request, or a SQL store whose count runs up only after its commit)."""

    def __init__(self, write: Callable[[str], None], interval: float = 10.0) -> None:
        self._write = write
        self.interval = interval
        self.total = self.done = self.not_applied = 0
        self._started = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, total: int) -> None:
        with self._lock:
            self.total, self.done, self.not_applied = total, 0, 0
        self._started = time.monotonic()
        if total and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="reconciler-progress", daemon=True)
            self._thread.start()

    def __call__(self, result: ChangeResult) -> None:
        with self._lock:
            self.done += 1
            self.not_applied += result.status != APPLIED

    def line(self) -> str:
        with self._lock:
            done, total, not_applied = self.done, self.total, self.not_applied
        elapsed = int(time.monotonic() - self._started)
        extra = f", {not_applied} not applied" if not_applied else ""
        return f"Still applying... [{done}/{total} done{extra}, {elapsed}s elapsed]\n"

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._write(self.line())

    def finish(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class ObservedStore:
    """A Store that tells `on_apply(n)` how many changes an apply carries, and times reads and writes."""

    def __init__(self, store: Store, on_apply: Callable[[int], None] | None = None) -> None:
        self._store = store
        self._on_apply = on_apply
        self.url: str = store.url
        self.capabilities: Capabilities = store.capabilities
        self.seconds: dict[str, float] = {}  # "read", "apply": time spent in the store

    def read(self) -> State:
        started = time.monotonic()
        try:
            return self._store.read()
        finally:
            self.seconds["read"] = self.seconds.get("read", 0.0) + time.monotonic() - started

    def secret_view(self, plaintext: str, group: str) -> str | None:
        return self._store.secret_view(plaintext, group)

    def lock(self, timeout: float, holder: str) -> AbstractContextManager[None]:
        return self._store.lock(timeout, holder)

    def refusals(self, changes: Sequence[Change]) -> dict[str, list[str]]:
        return self._store.refusals(changes)

    def read_access(self, state: State, models: Sequence[Key]) -> None:
        self._store.read_access(state, models)

    def apply(
        self,
        changes: Sequence[Change],
        secrets: Mapping[str, str],
        run: RunInfo,
        progress: ProgressCallback | None = None,
    ) -> list[ChangeResult]:
        if self._on_apply is not None:
            self._on_apply(len(changes))
        started = time.monotonic()
        try:
            return self._store.apply(changes, secrets, run, progress)
        finally:
            self.seconds["apply"] = time.monotonic() - started

    def close(self) -> None:
        self._store.close()
