"""Several `reconciler apply` processes at once against one fake Coder: serialised, nothing lost.

The appliers share the default lock file (one XDG_CACHE_HOME), or each has its own
cache and they share `--lock-store` (a SQLite file; PostgreSQL when
RECONCILER_TEST_POSTGRES_DSN is set). Each applier's manifests tag every display
name with its own variant, so that every write request names the run it belongs
to: in the fake's request log each run must be one block (its reads, then its
writes, nobody else's in between), and the server must end up holding the last
run's variant exactly. Four appliers by default, eight with RECONCILER_LONG_TESTS=1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from reconciler.changes import APPLIED
from reconciler.plan import PlanOptions
from reconciler.run import apply_manifests, make_plan
from reconciler.secrets import SecretResolver
from reconciler.state import MODEL, PROVIDER
from reconciler.stores import open_store
from tests import storefixtures
from tests.cliharness import LONG, Manifests, apply_argv, child_env, example_manifests
from tests.fakecoder import FakeCoder, fixtures

fake_coder = fixtures.fake_coder
APPLIERS = 8 if LONG else 4
TAG = re.compile(r"\(variant (\d+)\)")
READ = "read"
READS = 10  # a read of the fake: organizations, providers, prices, the toggle, build info, experiments,
# entitlements, the authcheck, models, overrides


def tag(k: int) -> str:
    return f"(variant {k})"


@pytest.fixture(params=["local", "sqlite", "postgresql"])
def lock_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None: the lock file on this machine; else the URL of the SQL store whose lock is shared."""
    if request.param == "local":
        yield None
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/locks.db"
    else:
        for backend in storefixtures.postgres_backend():
            backend.open()  # the lock store's tables
            yield backend.url


@pytest.fixture
def base(fake_coder: FakeCoder, tmp_path: Path) -> Manifests:
    """examples/, applied to the fake before the appliers start."""
    manifests = example_manifests(tmp_path)
    manifests.env.update(CODER_SESSION_TOKEN=fake_coder.token, XDG_CACHE_HOME=str(tmp_path / "cache"))
    store = open_store("coder+" + fake_coder.url, environ=manifests.env)
    try:
        _, report = apply_manifests([str(manifests.path)], store, PlanOptions(),
                                    SecretResolver(manifests.env), 10)
    finally:
        store.close()
    assert report.ok and len(report.results) > 20
    return manifests


def variant(manifests: Manifests, k: int) -> Path:
    """The manifests with every display name tagged `(variant k)`."""
    path = manifests.path.parent / f"variant-{k}"
    shutil.copytree(manifests.path, path)
    for file in path.rglob("*.yaml"):
        text = file.read_text()
        file.write_text(re.sub(r"^(\s+display_name: .+)$", rf"\1 {tag(k)}", text, flags=re.MULTILINE))
    return path


def run_at_once(fake: FakeCoder, manifests: Manifests, sets: list[Path], lock_store: str | None,
                workdir: Path) -> list[dict[str, Any]]:
    """One `apply` per manifest set, all started at once; their reports, in the order of `sets`."""
    processes = []
    for k, path in enumerate(sets):
        env = dict(manifests.env)
        options = ["--report", str(workdir / f"report-{k}.json"), "--lock-timeout", "120"]
        if lock_store is not None:  # every applier its own cache: only the shared lock store serialises
            env["XDG_CACHE_HOME"] = str(workdir / f"cache-{k}")
            options += ["--lock-store", lock_store]
        argv = apply_argv(path, "coder+" + fake.url, *options)
        processes.append(subprocess.Popen(argv, env=child_env(env), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr
    if lock_store is not None:
        assert not any((workdir / f"cache-{k}" / "reconciler").exists() for k in range(len(sets)))
    return [json.loads((workdir / f"report-{k}.json").read_text()) for k in range(len(sets))]


def blocks(fake: FakeCoder) -> list[tuple[str, int]]:
    """The request log as blocks of consecutive requests: (the variant a block's writes name, or
    READ for reads, how many requests)."""
    labels = []
    for request in fake.requests:
        if request.method == "GET" or request.path == "/api/v2/authcheck":  # authcheck writes nothing
            labels.append(READ)
        else:
            tags = set(TAG.findall(json.dumps(request.body)))
            assert len(tags) == 1, f"{request.method} {request.path} names no single run: {tags}"
            labels.append(tags.pop())
    return [(label, len(list(group))) for label, group in groupby(labels)]


def display_names(fake: FakeCoder, manifests: Manifests) -> set[str]:
    """The variant tags of every provider's and model's display name on the server."""
    store = open_store("coder+" + fake.url, environ=manifests.env)
    try:
        state = store.read()
    finally:
        store.close()
    records = [*state.of(PROVIDER).values(), *state.of(MODEL).values()]
    return {"".join(TAG.findall(r["display_name"])) for r in records}


def test_appliers_of_different_variants_never_interleave(
    fake_coder: FakeCoder, base: Manifests, lock_store: str | None, tmp_path: Path
) -> None:
    sets = [variant(base, k) for k in range(APPLIERS)]
    fake_coder.reset_requests()
    reports = run_at_once(fake_coder, base, sets, lock_store, tmp_path)

    found = blocks(fake_coder)
    # each run: its reads, then its writes; never another run's request in between
    assert found[::2] == [(READ, READS)] * APPLIERS, found
    order = [int(label) for label, _ in found[1::2]]
    assert sorted(order) == list(range(APPLIERS)) and len(found) == 2 * APPLIERS, found
    for (_, writes), k in zip(found[1::2], order, strict=True):
        report = reports[k]
        assert report["status"] == "success" and report["summary"]["failed"] == 0
        assert report["summary"]["applied"] == writes == len(report["changes"])  # one write per change
    assert len({r["summary"]["applied"] for r in reports}) == 1  # every run changed every name

    last = order[-1]
    assert display_names(fake_coder, base) == {str(last)}, "the server holds more than the last run"
    store = open_store("coder+" + fake_coder.url, environ=base.env)
    try:
        plans = {k: make_plan([str(path)], store, PlanOptions(), SecretResolver(base.env)).plan
                 for k, path in enumerate(sets)}
    finally:
        store.close()
    assert {k for k, plan in plans.items() if plan.empty} == {last}
    assert fake_coder.server_errors == []


def test_appliers_of_the_same_change_write_it_once(
    fake_coder: FakeCoder, base: Manifests, lock_store: str | None, tmp_path: Path
) -> None:
    changed = variant(base, 0)
    fake_coder.reset_requests()
    reports = run_at_once(fake_coder, base, [changed] * APPLIERS, lock_store, tmp_path)

    found = blocks(fake_coder)
    assert [label for label, _ in found] == [READ, "0", READ], found
    assert (found[0][1], found[2][1]) == (READS, READS * (APPLIERS - 1))  # the others only read
    applied = [r["summary"]["applied"] for r in reports]
    assert sorted(applied) == [0] * (APPLIERS - 1) + [found[1][1]]  # one run wrote, once per change
    assert all(r["status"] == "success" for r in reports)
    assert all(c["status"] == APPLIED for r in reports for c in r["changes"])
    assert display_names(fake_coder, base) == {"0"}
    assert fake_coder.server_errors == []
