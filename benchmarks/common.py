"""Timing helpers shared by the benchmark scripts: fresh processes, medians, a printed table."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_command(argv: Sequence[str], runs: int = 3, env: dict[str, str] | None = None,
                 expect: int | None = 0, cwd: str | None = None) -> float:
    """Median wall time of `argv` over `runs` fresh processes."""
    return statistics.median(run_timed(argv, env, expect, cwd)[0] for _ in range(runs))


def run_timed(argv: Sequence[str], env: dict[str, str] | None = None, expect: int | None = 0,
              cwd: str | None = None) -> tuple[float, float]:
    """One fresh process of `argv`: its wall time, and the CPU time (user + system) it used.

    On a shared virtual machine the wall time also counts what the host lent to others
    (steal time); the CPU time does not.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env={**os.environ, **(env or {})}, cwd=cwd)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if expect is not None and done.returncode != expect:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def reconciler(*args: str) -> list[str]:
    return [sys.executable, "-m", "reconciler", *args]


def table(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [f"\n{title}", "-" * (width + 14)]
    lines += [f"{name.ljust(width)}  {value:>10}" for name, value in rows]
    return "\n".join(lines)


def grid(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of several columns: `header` names them (the first names the row labels)."""
    everything = [header, *rows]
    widths = [max(len(row[i]) for row in everything) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return row[0].ljust(widths[0]) + "".join(f"  {v:>{w}}" for v, w in zip(row[1:], widths[1:], strict=True))

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([f"\n{title}", line(header), rule, *(line(row) for row in rows)])
