"""Plan and apply on 500 providers / 10,000 models, against validation alone, per SQL store, in one run.

    python benchmarks/bench_plan_apply.py [--runs 3] [--providers 500] [--models 10000] [--skip-postgres]

For each store — SQLite in a temporary directory, and PostgreSQL in a fresh schema when
RECONCILER_BENCH_POSTGRES_DSN or RECONCILER_TEST_POSTGRES_DSN is set — the median of `--runs`
rounds, each in fresh processes: `reconciler validate`; `apply` into a new, empty store; `plan`
with no changes; `plan` with 1% of the model files changed; `apply` with no changes, checking
that it wrote nothing. Prints the stores side by side with the ratios the issue sets:
no-change plan / validate <= 1.25, all-new apply / validate <= 1.4 (medians over medians), and
beneath each the lowest and highest ratio of one round's step to the same round's validation, which
shows how much a shared or busy machine moved the figures, and the same ratio in CPU time, which
the host's other guests (steal time) do not inflate.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from common import ROOT, grid, reconciler, run_timed

sys.path.insert(0, ROOT)
os.environ.setdefault("RECONCILER_CACHE", "off")  # cold runs, as measured before the cache
from benchmarks.generate import generate  # noqa: E402

DSN_ENVS = ("RECONCILER_BENCH_POSTGRES_DSN", "RECONCILER_TEST_POSTGRES_DSN")
TARGETS = {"plan no changes": 1.25, "apply all-new": 1.4}


@dataclass
class StoreKind:
    """How to make a fresh store of one kind, and how to tell that nothing was written to it."""

    name: str
    fresh: Callable[[], str]  # a new, empty store: its URL
    contents: Callable[[str], object]  # what the store holds, to compare before and after
    cleanup: Callable[[], None]


def sqlite_kind(work: str) -> StoreKind:
    made = itertools.count()

    def fresh() -> str:
        return f"sqlite:///{os.path.join(work, f'store-{next(made)}.db')}"

    def contents(url: str) -> object:
        path = url.removeprefix("sqlite:///")
        journals = [n for n in os.listdir(work) if n.startswith(os.path.basename(path) + "-")]
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest(), os.stat(path).st_mtime_ns, journals

    return StoreKind("SQLite", fresh, contents, lambda: None)


def postgres_kind(dsn: str) -> StoreKind:
    import psycopg

    schemas: list[str] = []

    def fresh() -> str:
        schema = "bench_" + secrets.token_hex(6)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
        schemas.append(schema)
        return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"

    def contents(url: str) -> object:
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                " ORDER BY 1").fetchall()]
            return {t: conn.execute(f'SELECT count(*), md5(string_agg(x::text, \',\' ORDER BY x::text))'
                                    f' FROM "{t}" x'.encode()).fetchone() for t in tables}

    def cleanup() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())

    return StoreKind("PostgreSQL", fresh, contents, cleanup)


@dataclass
class Figures:
    wall: dict[str, list[float]]  # step -> wall time of each round, in round order
    cpu: dict[str, list[float]]  # step -> CPU time (user + system) of each round
    zero_writes: bool  # every apply with no changes left the store's contents as they were

    def median(self, step: str, clock: str = "wall") -> float:
        return statistics.median(getattr(self, clock)[step])

    def ratio(self, step: str, clock: str = "wall") -> str:
        """The step's median over validation's median."""
        return f"{self.median(step, clock) / self.median('validate', clock):.2f}x"

    def spread(self, step: str) -> str:
        """The lowest and highest of the step's per-round wall-time ratios to the same round's validation."""
        ratios = [s / v for s, v in zip(self.wall[step], self.wall["validate"], strict=True)]
        return f"{min(ratios):.2f}-{max(ratios):.2f}"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def change_one_percent(source: str, target: str) -> int:
    """A copy of the set with 1% of the model files changed (display name); returns how many."""
    shutil.copytree(source, target)
    models = sorted(os.listdir(os.path.join(target, "models")))
    chosen = models[::100]
    for name in chosen:
        path = os.path.join(target, "models", name)
        with open(path) as fh:
            text = fh.read()
        with open(path, "w") as fh:
            fh.write(text.replace("  display_name: Model ", "  display_name: Changed model ", 1))
    return len(chosen)


def measure(kind: StoreKind, data: str, changed: str, env: dict[str, str], runs: int) -> Figures:
    """Rounds of every step in turn, so that a change in the machine's load touches them all alike."""
    figures = Figures({}, {}, zero_writes=True)

    def timed(step: str, argv: list[str], expect: int) -> None:
        wall, cpu = run_timed(argv, env, expect)
        figures.wall.setdefault(step, []).append(wall)
        figures.cpu.setdefault(step, []).append(cpu)

    for round_ in range(1, runs + 1):
        progress(f"{kind.name}: round {round_} of {runs}")
        url = kind.fresh()
        steps = [
            ("validate", reconciler("validate", data), 0),
            ("apply all-new", reconciler("apply", data, "--store", url), 0),
            ("plan no changes", reconciler("plan", data, "--store", url, "--detailed-exitcode"), 0),
            ("plan 1% changed", reconciler("plan", changed, "--store", url, "--detailed-exitcode"), 2),
        ]
        for step, argv, expect in steps:
            timed(step, argv, expect)
        before = kind.contents(url)
        timed("apply no changes", reconciler("apply", data, "--store", url), 0)
        figures.zero_writes = figures.zero_writes and kind.contents(url) == before
    return figures


@contextmanager
def workspace() -> Iterator[str]:
    work = tempfile.mkdtemp(prefix="reconciler-bench-")
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--providers", type=int, default=500)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    dsn = next((os.environ[n] for n in DSN_ENVS if os.environ.get(n)), None)
    env = {
        "RECONCILER_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        **{f"PROVIDER_{i:04d}_KEY_{s}": f"sk-bench-{i:04d}-{s}-0123456789abcdef"
           for i in range(args.providers) for s in "AB"},
    }
    with workspace() as work:
        data, changed = os.path.join(work, "set"), os.path.join(work, "changed")
        lines = generate(data, args.providers, args.models)
        edited = change_one_percent(data, changed)
        kinds = [sqlite_kind(work)]
        if dsn and not args.skip_postgres:
            kinds.append(postgres_kind(dsn))
        results: dict[str, Figures] = {}
        for kind in kinds:
            try:
                results[kind.name] = measure(kind, data, changed, env, args.runs)
            finally:
                kind.cleanup()
    print(report(results, args, lines, edited))
    if len(kinds) == 1:
        print(f"\n(PostgreSQL skipped: set one of {', '.join(DSN_ENVS)})")


def report(results: dict[str, Figures], args: argparse.Namespace, lines: int, edited: int) -> str:
    names = list(results)
    steps = ["validate", "apply all-new", "plan no changes", "plan 1% changed", "apply no changes"]
    rows = [[step, *(f"{results[n].median(step):.2f} s" for n in names)] for step in steps]
    rows.append(["apply no changes: zero writes", *("yes" if results[n].zero_writes else "NO" for n in names)])
    for step, target in TARGETS.items():
        rows.append([f"{step} / validate (target <= {target})", *(results[n].ratio(step) for n in names)])
        rows.append(["  per round, lowest-highest", *(results[n].spread(step) for n in names)])
        rows.append(["  in CPU time (user + system)", *(results[n].ratio(step, "cpu") for n in names)])
    title = (f"plan and apply: {args.providers} providers, {args.models} models ({lines} lines, "
             f"{edited} model files changed for the 1% plan); median of {args.runs} rounds of fresh processes")
    return grid(title, ["", *names], rows)


if __name__ == "__main__":
    main()
