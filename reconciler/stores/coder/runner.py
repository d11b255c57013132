"""Run writes in dependency order, independent ones concurrently, on a bounded pool of threads.

A unit is one change, or a few changes written by one request (prices). A
unit starts once every unit it needs has been applied; when one of those
failed or was skipped it is skipped, and so is everything after it. A failure
stops nothing else: independent units carry on and writes in flight finish.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reconciler.changes import APPLIED, FAILED, SKIPPED, Change, ChangeResult
from reconciler.stores.base import ProgressCallback


@dataclass(frozen=True)
class Unit:
    changes: tuple[Change, ...]
    needs: frozenset[int] = frozenset()  # indices of the units that must be applied first


Execute = Callable[[Unit], list[ChangeResult]]


def units_for(changes: Sequence[Change], group: Callable[[Change], str | None],
              needs: Callable[[Change], Iterable[str]]) -> list[Unit]:
    """One unit per change, except changes with the same `group` key, which share one unit.

    A unit needs the units of the change ids `needs` names (usually `depends_on`);
    ids absent from the list are ignored.
    """
    members: list[list[Change]] = []
    unit_of: dict[str, int] = {}
    grouped: dict[str, int] = {}
    for change in changes:
        key = group(change)
        if key is not None and key in grouped:
            index = grouped[key]
        else:
            index = len(members)
            members.append([])
            if key is not None:
                grouped[key] = index
        members[index].append(change)
        unit_of[change.id] = index
    return [
        Unit(tuple(items), frozenset(
            unit_of[need] for c in items for need in needs(c) if need in unit_of and unit_of[need] != i
        ))
        for i, items in enumerate(members)
    ]


def run_units(units: Sequence[Unit], execute: Execute, parallelism: int, until: float,
              progress: ProgressCallback | None = None) -> list[ChangeResult]:
    """Execute the units; returns one result per change, unit by unit."""
    dependants: list[list[int]] = [[] for _ in units]
    waiting = [len(unit.needs) for unit in units]
    for index, unit in enumerate(units):
        for need in unit.needs:
            dependants[need].append(index)
    results: dict[int, list[ChangeResult]] = {}
    finished: queue.SimpleQueue[tuple[int, list[ChangeResult]]] = queue.SimpleQueue()

    def work(index: int) -> None:
        unit = units[index]
        if time.monotonic() >= until:
            out = [ChangeResult(c, SKIPPED, "not attempted: the apply deadline passed") for c in unit.changes]
        else:
            try:
                out = execute(unit)
            except Exception as exc:  # a bug: report it on the change rather than lose the others
                out = [ChangeResult(c, FAILED, f"internal error ({type(exc).__name__})") for c in unit.changes]
        finished.put((index, out))

    def record(index: int, out: list[ChangeResult]) -> None:
        results[index] = out
        if progress is not None:
            for result in out:
                progress(result)

    def skip(index: int, blocker: int) -> None:
        """Skip a unit that needs `blocker`, and everything that needs it in turn."""
        stack = [(index, blocker)]
        while stack:
            current, cause = stack.pop()
            if current in results:
                continue
            failed = ", ".join(r.change.id for r in results[cause] if r.status != APPLIED)
            record(current, [ChangeResult(c, SKIPPED, f"not attempted: {failed} did not succeed")
                             for c in units[current].changes])
            stack += [(after, current) for after in dependants[current]]

    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="coder-write") as pool:
        running = 0
        for index, count in enumerate(waiting):
            if count == 0:
                pool.submit(work, index)
                running += 1
        while running:
            index, out = finished.get()
            running -= 1
            record(index, out)
            applied = all(r.status == APPLIED for r in out)
            for after in dependants[index]:
                if after in results:
                    continue
                if not applied:
                    skip(after, index)
                    continue
                waiting[after] -= 1
                if waiting[after] == 0:
                    pool.submit(work, after)
                    running += 1
    for index, unit in enumerate(units):  # only a dependency cycle leaves a unit behind
        if index not in results:
            record(index, [ChangeResult(c, SKIPPED, "not attempted: its dependencies form a cycle")
                           for c in unit.changes])
    return [result for index in range(len(units)) for result in results[index]]
