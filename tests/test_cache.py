"""The cache (reconciler.cache) and the no-op shortcut (reconciler.noop): a cached or shortcut run
gives what a cold run gives, byte for byte, and every change to files, tool, schemas, cache or
store is seen."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler import cache
from reconciler.plan import PlanOptions
from reconciler.run import make_plan
from reconciler.secrets import SecretResolver
from reconciler.stores import open_store
from reconciler.validate import validate_paths
from tests.cliharness import Manifests, example_manifests, generated_manifests
from tests.conftest import ROOT, run_cli

HOSTILE = ROOT / "tests" / "hostile"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(where))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    return where


def pack_of(where: Path) -> Path:
    packs = list(where.glob("files-*.pack"))
    assert len(packs) == 1, packs
    return packs[0]


def outputs(*args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[int, str, str]:
    done = run_cli(*args, env=env, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_cached_validate_is_byte_identical_to_cold(tmp_path: Path, fmt: str) -> None:
    """Hostile files (syntax errors, bad encodings, aliases, secrets, wrong types) and the examples:
    the run that fills the cache, the run that reads it and a --no-cache run agree byte for byte."""
    env = {cache.CACHE_DIR_ENV: str(tmp_path / "cache")}
    for target in (HOSTILE, ROOT / "examples"):
        cold = outputs("validate", "--no-cache", "--format", fmt, str(target), env=env)
        assert target != HOSTILE or not (tmp_path / "cache").exists()  # --no-cache writes nothing either
        filling = outputs("validate", "--format", fmt, str(target), env=env)
        warm = outputs("validate", "--format", fmt, str(target), env=env)
        off = outputs("validate", "--format", fmt, str(target), env={**env, cache.CACHE_ENV: "off"})
        assert cold == filling == warm == off
        assert "Traceback" not in cold[2]


def test_warm_validate_reads_no_file_twice_and_keeps_positions(cache_dir: Path) -> None:
    cold = validate_paths([str(HOSTILE)])
    assert cold.cached == 0 and pack_of(cache_dir).stat().st_size > 0
    warm = validate_paths([str(HOSTILE)])
    readable = len(cold.digests)
    never = sum(1 for d in cold.diagnostics if d.code in cache.NEVER_CACHED)
    assert warm.cached >= readable - never - 1 > 0
    assert warm.diagnostics == cold.diagnostics  # file:line:col, codes, messages, order
    assert [(d.file, d.index, d.data) for d in warm.documents] == [(d.file, d.index, d.data) for d in cold.documents]
    assert warm.manifests.invalid_names == cold.manifests.invalid_names


def test_no_secret_value_is_cached(tmp_path: Path, cache_dir: Path) -> None:
    canary = "sk-canary-0123456789abcdef-never-cached"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "p.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Provider\nmetadata:\n  name: p\nspec:\n  type: openai\n"
        f"  api_keys:\n    - {canary}\n")
    first = validate_paths([str(tmp_path / "m")])
    assert any(d.code == "RC202" for d in first.diagnostics)
    for file in cache_dir.rglob("*"):
        assert canary.encode() not in file.read_bytes()
    assert validate_paths([str(tmp_path / "m")]).diagnostics == first.diagnostics


def cold_validate(paths: list[str]) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cache.CACHE_ENV, "off")
        return validate_paths(paths)


def copy_examples(tmp_path: Path) -> Path:
    target = tmp_path / "m"
    shutil.copytree(ROOT / "examples", target)
    return target


def test_edit_same_size_same_mtime_rename_delete(tmp_path: Path, cache_dir: Path) -> None:
    manifests = copy_examples(tmp_path)
    first = validate_paths([str(manifests)])
    assert first.errors == 0
    victim = next(Path(p) for p in sorted(first.digests) if "apiVersion: reconciler/v1" in Path(p).read_text())
    text = victim.read_text()
    info = victim.stat()
    edited = text.replace("apiVersion: reconciler/v1", "apiVersion: reconciler/v9", 1)
    assert edited != text and len(edited) == len(text)
    victim.write_text(edited)
    os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))  # the same size, the same mtime
    assert victim.stat().st_size == info.st_size and victim.stat().st_mtime_ns == info.st_mtime_ns
    after = validate_paths([str(manifests)])
    assert after.cached == first.files - 1
    assert str(victim) in {d.file for d in after.diagnostics if d.severity == "error"}
    assert after.diagnostics == cold_validate([str(manifests)]).diagnostics

    renamed = victim.with_name("renamed-" + victim.name)
    victim.rename(renamed)
    moved = validate_paths([str(manifests)])
    assert str(renamed) in {d.file for d in moved.diagnostics} and all(d.file != str(victim) for d in moved.diagnostics)
    assert moved.diagnostics == cold_validate([str(manifests)]).diagnostics

    renamed.unlink()
    gone = validate_paths([str(manifests)])
    assert gone.files == first.files - 1 and all(d.file != str(renamed) for d in gone.diagnostics)
    assert gone.cached == gone.files


def test_another_tool_version_or_schema_does_not_read_the_pack(cache_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    import reconciler

    validate_paths([str(ROOT / "examples")])
    assert validate_paths([str(ROOT / "examples")]).cached > 0
    old = cache.tool_id()
    cache.tool_id.cache_clear()
    monkeypatch.setattr(reconciler, "__version__", reconciler.__version__ + ".post1")
    try:
        assert cache.tool_id() != old
        assert validate_paths([str(ROOT / "examples")]).cached == 0
        assert len(list(cache_dir.glob("files-*.pack"))) == 1  # the other version's pack is removed
    finally:
        cache.tool_id.cache_clear()
    schemas = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", schemas)
    files = sorted(str(p) for p in schemas.glob("*.json"))
    before = cache.schema_digest(files)
    model = schemas / "model.schema.json"
    model.write_text(model.read_text().replace('"description"', '"description" ', 1))
    assert cache.schema_digest(files) != before


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "code"])
def test_a_corrupt_pack_is_ignored_and_rewritten(cache_dir: Path, damage: str, tmp_path: Path) -> None:
    cold = validate_paths([str(HOSTILE)])
    pack = pack_of(cache_dir)
    blob = pack.read_bytes()
    if damage == "truncate":
        pack.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        pack.write_bytes(blob[:-10] + bytes([blob[-10] ^ 0xFF]) + blob[-9:])
    elif damage == "garbage":
        pack.write_bytes(b"\x00" * 100)
    else:  # a well-formed file whose pickle would run code: never executed
        marker = tmp_path / "ran"

        class Evil:
            def __reduce__(self) -> Any:
                return (os.system, (f"touch {marker}",))

        cache.write_atomic(pack, pickle.dumps({("x", b"y"): pickle.dumps(Evil())}))
        entries = {(str(p), cache.digest(p.read_bytes())): pickle.dumps(Evil())
                   for p in sorted(HOSTILE.rglob("*.yaml"))}
        cache.write_atomic(pack, pickle.dumps(entries))
    again = validate_paths([str(HOSTILE)])
    assert again.cached == 0
    assert again.diagnostics == cold.diagnostics
    if damage == "code":
        assert not (tmp_path / "ran").exists()
    assert validate_paths([str(HOSTILE)]).cached > 0  # rewritten whole


def test_two_processes_writing_the_cache_at_once(tmp_path: Path) -> None:
    manifests = generated_manifests(tmp_path / "m", 20, 500)
    env = {**manifests.env, cache.CACHE_DIR_ENV: str(tmp_path / "cache"), "NO_COLOR": "1"}
    cold = run_cli("validate", "--no-cache", "--format", "json", str(manifests.path), env=env)
    for _ in range(3):
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        argv = [sys.executable, "-m", "reconciler", "validate", "--format", "json", str(manifests.path)]
        procs = [subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(3)]
        results = [p.communicate(timeout=300) for p in procs]
        assert all(out.decode() == cold.stdout for out, _ in results)
        assert [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp")] == []
        warm = run_cli("validate", "--format", "json", str(manifests.path), env=env)
        assert warm.stdout == cold.stdout
        assert cache.loads(cache.read_checked(pack_of(tmp_path / "cache"))) is not None


def test_atomic_writes_from_many_processes_leave_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "c" / "f"
    code = ("import sys; from pathlib import Path; from reconciler import cache\n"
            "for i in range(200): cache.write_atomic(Path(sys.argv[1]), sys.argv[2].encode() * 50000)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), letter], cwd=ROOT) for letter in "abcd"]
    deadline = time.monotonic() + 60
    seen = set()
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        payload = cache.read_checked(target)
        if payload is not None:
            assert len(payload) == 50000 and len(set(payload)) == 1
            seen.add(payload[:1])
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert cache.read_checked(target) in {letter.encode() * 50000 for letter in "abcd"}


# -- the no-op shortcut --------------------------------------------------------------------------

@pytest.fixture
def applied(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Manifests, str]:
    manifests = example_manifests(tmp_path)
    for name, value in manifests.env.items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    done = run_cli("apply", str(manifests.path), "--store", url, env={**manifests.env, "RECONCILER_CACHE": "off"})
    assert done.returncode == 0, done.stderr
    time.sleep(cache.RACY_SECONDS + 0.1)  # a store written this recently has no change token
    return manifests, url


def plan_in_process(manifests: Manifests, url: str) -> Any:
    store = open_store(url, read_only=True)
    try:
        return make_plan([str(manifests.path)], store, PlanOptions(), SecretResolver())
    finally:
        store.close()


def test_noop_shortcut_is_byte_identical_and_is_taken(applied: tuple[Manifests, str]) -> None:
    manifests, url = applied
    env = {**manifests.env, cache.CACHE_DIR_ENV: os.environ[cache.CACHE_DIR_ENV]}
    for command, fmt in (("plan", "text"), ("plan", "json"), ("plan", "markdown"), ("apply", "text")):
        cold = outputs(command, "--no-cache", "--format", fmt, str(manifests.path), "--store", url, env=env)
        records = outputs(command, "--format", fmt, str(manifests.path), "--store", url, env=env)
        shortcut = outputs(command, "--format", fmt, str(manifests.path), "--store", url, env=env)
        assert cold == records == shortcut, command
    assert plan_in_process(manifests, url).reused
    reports = [json.loads(outputs("apply", *flag, "--format", "json", str(manifests.path), "--store", url,
                                  env=env)[1]) for flag in ((), ("--no-cache",))]
    for report in reports:  # when it ran differs; nothing else may
        for clock in ("started_at", "finished_at", "duration_seconds"):
            report.pop(clock, None)
    assert reports[0] == reports[1]


def test_a_store_changed_outside_reconciler_is_seen(applied: tuple[Manifests, str], tmp_path: Path) -> None:
    manifests, url = applied
    assert not plan_in_process(manifests, url).reused  # the full run that records
    assert plan_in_process(manifests, url).reused
    with sqlite3.connect(tmp_path / "store.db") as conn:  # another client, at once
        conn.execute("UPDATE models SET display_name = 'changed behind our back' WHERE rowid = "
                     "(SELECT min(rowid) FROM models)")
    outcome = plan_in_process(manifests, url)
    assert not outcome.reused and [c.action for c in outcome.plan.changes] == ["update"]
    # and later, when its timestamps are no longer recent: still seen (stat and header moved)
    with sqlite3.connect(tmp_path / "store.db") as conn:
        conn.execute("UPDATE models SET display_name = 'changed again' WHERE rowid = "
                     "(SELECT min(rowid) FROM models)")
    time.sleep(cache.RACY_SECONDS + 0.1)
    outcome = plan_in_process(manifests, url)
    assert not outcome.reused and len(outcome.plan.changes) == 1


def test_a_changed_file_or_secret_is_seen(applied: tuple[Manifests, str], monkeypatch: pytest.MonkeyPatch) -> None:
    manifests, url = applied
    plan_in_process(manifests, url)
    assert plan_in_process(manifests, url).reused
    env_secret = next(name for name in manifests.env if name.startswith("ACME_"))
    monkeypatch.setenv(env_secret, "sk-rotated-0123456789abcdef")
    outcome = plan_in_process(manifests, url)
    assert not outcome.reused and outcome.plan.changes  # the new key's fingerprint differs
    monkeypatch.setenv(env_secret, manifests.env[env_secret])
    plan_in_process(manifests, url)
    assert plan_in_process(manifests, url).reused
    victim = next(p for p in sorted(manifests.path.rglob("*.yaml")) if "display_name:" in p.read_text())
    info = victim.stat()
    text = victim.read_text()
    line = next(x for x in text.splitlines() if "display_name:" in x)
    changed = line[:-1] + ("X" if line[-1] != "X" else "Y")
    victim.write_text(text.replace(line, changed, 1))
    os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))
    outcome = plan_in_process(manifests, url)
    assert not outcome.reused and [c.action for c in outcome.plan.changes] == ["update"]


def test_no_shortcut_without_a_change_token(tmp_path: Path, cache_dir: Path) -> None:
    from reconciler.noop import change_token

    assert change_token(open_store(f"sqlite:///{tmp_path / 'absent.db'}", read_only=True)) is None
