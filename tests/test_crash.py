"""SIGKILL `reconciler apply` at many points of a large apply: the store is always exactly as before
or exactly as after, and the next apply is not blocked by the killed one's lock.

Two manifest sets A and B (benchmarks/generate.py) differ by creates, updates, deletes and a
rotated secret. Applies alternate A -> B and B -> A (with --prune), so that no run is wasted on
restoring the store. Each direction's uninterrupted duration is measured (the median of every
uninterrupted run so far, as the machine's load varies); the timed kills fall at evenly spaced
fractions of it. Other kills wait until the apply's write transaction is seen in progress
(SQLite: its rollback journal exists; PostgreSQL: its session holds a transaction id), so that
some land in the middle of the writes, and a few wait until it has ended, so that some land
after the commit.

Default: 30 providers / 900 models and 12 points per store. RECONCILER_LONG_TESTS=1 adds a run
with 100 providers / 3,000 models and 50 points.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests import storefixtures
from tests.cliharness import (
    apply_argv,
    child_env,
    generated_manifests,
    long_only,
    state_fingerprint,
)
from tests.storefixtures import Backend, PostgresBackend, SqliteBackend

backend = storefixtures.backend  # both SQL stores

OPTIONS = ("--prune", "--max-deletes", "1000000", "--lock-timeout", "15")
KILLED = -signal.SIGKILL
Probe = Callable[[], bool]  # is the apply's write transaction in progress?


@dataclass
class Direction:
    """One way of going between the two states: its manifests and environment, its endpoints."""

    name: str
    manifests: Path
    env: dict[str, str]
    source: str = ""  # fingerprint of the state it starts from
    target: str = ""  # fingerprint of the state it makes
    durations: list[float] = field(default_factory=list)  # of its uninterrupted applies

    @property
    def seconds(self) -> float:
        return statistics.median(self.durations)


@dataclass
class Outcome:
    direction: str
    how: str  # "timed", "in-transaction" or "after-commit"
    killed: bool  # the process was still running when it was killed
    state: str  # "before" or "after"


def make_sets(root: Path, providers: int, models: int) -> tuple[Direction, Direction]:
    """A: 2/3 of the models. B: all of them, providers and every tenth model renamed, a key rotated."""
    a = generated_manifests(root / "a", providers, models * 2 // 3)
    b = generated_manifests(root / "b", providers, models)
    for file in (b.path / "providers").iterdir():
        file.write_text(file.read_text().replace("display_name: Provider ", "display_name: Renamed provider "))
    for file in sorted((b.path / "models").iterdir())[::10]:
        file.write_text(file.read_text().replace("display_name: Model ", "display_name: Renamed model "))
    env_b = {**a.env, "PROVIDER_0000_KEY_A": "sk-gen-0000-a-rotated-0123456789"}
    return Direction("A->B", b.path, env_b), Direction("B->A", a.path, a.env)


def run_apply(url: str, direction: Direction) -> float:
    started = time.perf_counter()
    done = subprocess.run(apply_argv(direction.manifests, url, *OPTIONS), env=child_env(direction.env),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - started


def kill_after(url: str, direction: Direction, delay: float) -> bool:
    """Start an apply and SIGKILL it after `delay` s; True when it was still running then."""
    process = subprocess.Popen(apply_argv(direction.manifests, url, *OPTIONS), env=child_env(direction.env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode in (0, KILLED), stderr
    return process.returncode == KILLED


def kill_on_probe(url: str, direction: Direction, writing: Probe, committed: bool, delay: float) -> bool:
    """Start an apply, wait until its write transaction is in progress (or, `committed`, over),
    and SIGKILL it `delay` s later; True when it was still running then."""
    process = subprocess.Popen(apply_argv(direction.manifests, url, *OPTIONS), env=child_env(direction.env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and not writing():
            time.sleep(0.0005)
        while committed and process.poll() is None and writing():
            time.sleep(0.0005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode in (0, KILLED)
    return process.returncode == KILLED


def write_probe(backend: Backend, url: str) -> tuple[Probe, Callable[[], None]]:
    """A probe of the store's write transaction, and how to close it."""
    if isinstance(backend, SqliteBackend):
        journal = backend.path.with_name(backend.path.name + "-journal")
        return journal.exists, lambda: None
    assert isinstance(backend, PostgresBackend)
    name = url.rsplit("application_name=", 1)[1]
    conn = psycopg.connect(backend.dsn, autocommit=True)
    query = (  # the apply's own session (not the lock's) once it has written a row
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND backend_xid IS NOT NULL AND query NOT LIKE '%%lock_holders%%'"
    )

    def writing() -> bool:
        row = conn.execute(query, (name,)).fetchone()
        return bool(row and row[0])

    return writing, conn.close


def history_rows(backend: Backend) -> int:
    return int(backend.query("SELECT count(*) FROM history")[0][0])


def store_url(backend: Backend) -> str:
    """The backend's URL; PostgreSQL sessions get a name of their own, for the probe to find them."""
    if isinstance(backend, PostgresBackend):
        return f"{backend.url}&application_name=crash_{backend.schema}"
    return backend.url


def crash_points(backend: Backend, root: Path, providers: int, models: int, timed: int,
                 in_transaction: tuple[float, ...], after_commit: int) -> list[Outcome]:
    url = store_url(backend)
    forward, backward = make_sets(root, providers, models)
    run_apply(url, backward)  # the store starts in state A
    forward.source = backward.target = state_fingerprint(url)
    forward.durations.append(run_apply(url, forward))
    forward.target = backward.source = state_fingerprint(url)
    backward.durations.append(run_apply(url, backward))
    assert state_fingerprint(url) == forward.source and forward.source != forward.target

    writing, close_probe = write_probe(backend, url)
    plan: list[tuple[str, float]] = [("timed", (i + 1) / timed) for i in range(timed)]
    plan += [("in-transaction", delay) for delay in in_transaction]
    plan += [("after-commit", 0.0)] * after_commit
    outcomes: list[Outcome] = []
    try:
        for i, (how, value) in enumerate(plan):
            direction = forward if i % 2 == 0 else backward
            applies = history_rows(backend)
            if how == "timed":
                killed = kill_after(url, direction, value * direction.seconds)
            else:
                killed = kill_on_probe(url, direction, writing, how == "after-commit", value)
            found = state_fingerprint(url)  # a fresh reader, in this process
            assert found in (direction.source, direction.target), (
                f"{direction.name}, {how} kill at {value:.3f}: the store is neither before nor after")
            after = found == direction.target
            assert history_rows(backend) == applies + after  # the history row commits with the data
            outcomes.append(Outcome(direction.name, how, killed, "after" if after else "before"))
            duration = run_apply(url, direction)  # the next apply is not blocked, and finishes the job
            if not after:  # it did the whole apply: one more sample of how long that takes
                direction.durations.append(duration)
            assert state_fingerprint(url) == direction.target
    finally:
        close_probe()
    return outcomes


def check(outcomes: list[Outcome]) -> None:
    tally = Counter((o.how, o.state, o.killed) for o in outcomes)
    summary = ", ".join(f"{how}/{state}/{'killed' if killed else 'finished'}: {n}"
                        for (how, state, killed), n in sorted(tally.items()))
    # not vacuous: kills found the store both as it was and as it was made, by killed processes
    assert any(o.state == "before" and o.killed for o in outcomes if o.how == "timed"), summary
    assert any(o.killed for o in outcomes if o.how == "in-transaction"), summary
    assert any(o.state == "after" and o.killed for o in outcomes if o.how == "after-commit"), summary


def test_sigkill_during_apply_leaves_before_or_after(backend: Backend, tmp_path: Path) -> None:
    check(crash_points(backend, tmp_path, 30, 900, timed=8, in_transaction=(0.0, 0.02), after_commit=2))


@pytest.mark.slow
@long_only
def test_sigkill_during_a_large_apply_at_many_points(backend: Backend, tmp_path: Path) -> None:
    delays = (0.0, 0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2)
    check(crash_points(backend, tmp_path, 100, 3000, timed=36, in_transaction=delays, after_commit=4))
