"""`reconciler plan` and `reconciler apply` through the real entry point, against both SQL stores.

Each test gets a copy of examples/ (file secrets under tmp_path, every env secret set, a fresh
encryption key) and a store: a SQLite file under tmp_path or a fresh PostgreSQL schema
(RECONCILER_TEST_POSTGRES_DSN).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.plan import FORMAT_VERSION
from reconciler.secrets import ENCRYPTION_KEY_ENV
from tests import storefixtures
from tests.cliharness import (
    Manifests,
    assert_one_line_error,
    example_manifests,
    history,
    lock_held_by,
    new_encryption_key,
    object_count,
    opened,
    storage_snapshot,
)
from tests.conftest import run_cli
from tests.storefixtures import Backend

backend = storefixtures.backend  # both SQL stores

VERCEL_IDS = {
    "Provider/vercel",
    "Model/default/vercel/anthropic/claude-sonnet-4.5",
    "Model/default/vercel/xai/grok-code-fast-1",
}


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    return example_manifests(tmp_path)


def reconciler(backend: Backend, manifests: Manifests, command: str, *args: str,
               env: dict[str, str] | None = None) -> Any:
    """`reconciler COMMAND ARGS --store URL`, in the manifests' environment unless `env` is given."""
    return run_cli(command, *args, "--store", backend.url, env=manifests.env if env is None else env)


def plan_json(backend: Backend, manifests: Manifests, *args: str) -> dict[str, Any]:
    done = reconciler(backend, manifests, "plan", str(manifests.path), "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def apply_ok(backend: Backend, manifests: Manifests, *args: str) -> Any:
    done = reconciler(backend, manifests, "apply", str(manifests.path), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def secret_values(manifests: Manifests) -> list[str]:
    return [v for k, v in manifests.env.items() if k.startswith("ACME_") or k == ENCRYPTION_KEY_ENV]


def remove_vercel(manifests: Manifests) -> None:
    manifests.file("providers/vercel.yaml").unlink()
    manifests.file("models/vercel.yaml").unlink()


# -- the main cycle -----------------------------------------------------------------------------


def test_plan_apply_and_a_rerun_that_writes_nothing(
    backend: Backend, manifests: Manifests, tmp_path: Path
) -> None:
    first = reconciler(backend, manifests, "plan", str(manifests.path))
    assert first.returncode == 0, first.stderr
    assert "to create, 0 to update, 0 to replace, 0 to delete." in first.stdout
    assert reconciler(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode").returncode == 2
    planned = plan_json(backend, manifests)
    assert planned["changes"] and {c["action"] for c in planned["changes"]} == {"create"}
    assert object_count(backend.url) == 0 and history(backend.url) == []  # plan wrote nothing

    report_file = tmp_path / "report.json"
    applied = apply_ok(backend, manifests, "--report", str(report_file))
    assert f"Apply complete: {len(planned['changes'])} applied, 0 failed, 0 skipped." in applied.stdout
    report = json.loads(report_file.read_text())
    assert report["format_version"] == FORMAT_VERSION and report["status"] == "success"
    assert [(c["action"], c["key"], c["status"]) for c in report["changes"]] == [
        (c["action"], c["key"], "applied") for c in planned["changes"]
    ]
    assert report["summary"] == {"applied": len(planned["changes"]), "failed": 0, "skipped": 0}
    assert object_count(backend.url) == len(planned["changes"])
    assert len(history(backend.url)) == 1

    before = storage_snapshot(backend)
    again = apply_ok(backend, manifests, "--report", str(report_file))
    assert again.stdout == "Apply complete: no changes.\n"
    assert json.loads(report_file.read_text())["changes"] == []
    assert storage_snapshot(backend) == before  # zero writes: same bytes (and mtime), same rows
    assert len(history(backend.url)) == 1
    settled = reconciler(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode")
    assert settled.returncode == 0, settled.stderr
    assert settled.stdout.startswith("No changes.")


def test_plan_needs_no_secret_values(backend: Backend, manifests: Manifests) -> None:
    apply_ok(backend, manifests)
    bare = {"PYTHONPATH": manifests.env["PYTHONPATH"]}  # no secrets, no encryption key
    done = reconciler(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode",
                      "--format", "json", env=bare)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["changes"] == []
    references = {f"env:{name}" for name in manifests.env if name.startswith("ACME_")}
    assert references <= set(plan["unverifiable_secrets"])


def test_a_rotated_secret_is_a_sensitive_change(backend: Backend, manifests: Manifests) -> None:
    apply_ok(backend, manifests)
    rotated = manifests.with_env(ACME_GEMINI_API_KEY="sk-test-rotated-gemini-key-0001")
    done = reconciler(backend, manifests, "plan", str(manifests.path), env=rotated)
    assert done.returncode == 0, done.stderr
    assert "~ api_keys[0]: (sensitive value changed)" in done.stdout
    assert "sk-test-rotated" not in done.stdout + done.stderr
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." in done.stdout


# -- saved plans ----------------------------------------------------------------------------------


def test_a_saved_plan_applies_exactly_once(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    plan_file = tmp_path / "reconciler.plan"
    saved = reconciler(backend, manifests, "plan", str(manifests.path), "--out", str(plan_file))
    assert saved.returncode == 0, saved.stderr
    assert f"Saved the plan to {plan_file}" in saved.stdout
    assert object_count(backend.url) == 0
    planned = json.loads(plan_file.read_text())["plan"]["changes"]

    report_file = tmp_path / "report.json"
    applied = reconciler(backend, manifests, "apply", str(plan_file), "--report", str(report_file))
    assert applied.returncode == 0, applied.stderr
    report = json.loads(report_file.read_text())
    assert [(c["key"], c["status"]) for c in report["changes"]] == [(c["key"], "applied") for c in planned]
    settled = reconciler(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout

    before = storage_snapshot(backend)
    twice = reconciler(backend, manifests, "apply", str(plan_file))
    assert twice.returncode == 1
    assert_one_line_error(twice.stderr, "is stale", "the store has changed since the plan was made")
    assert storage_snapshot(backend) == before


def test_a_saved_plan_is_refused_when_the_store_moved(
    backend: Backend, manifests: Manifests, tmp_path: Path
) -> None:
    apply_ok(backend, manifests)
    openai = manifests.file("providers/openai.yaml")
    openai.write_text(openai.read_text().replace("display_name: OpenAI", "display_name: OpenAI (reviewed)"))
    plan_file = tmp_path / "reviewed.plan"
    assert reconciler(backend, manifests, "plan", str(manifests.path), "--out", str(plan_file)).returncode == 0
    # meanwhile, someone applies something else
    settings = manifests.file("settings.yaml")
    settings.write_text(settings.read_text().replace("allow_users: true", "allow_users: false"))
    apply_ok(backend, manifests)
    before = storage_snapshot(backend)
    done = reconciler(backend, manifests, "apply", str(plan_file))
    assert done.returncode == 1
    assert_one_line_error(done.stderr, str(plan_file), "is stale")
    assert storage_snapshot(backend) == before


def test_an_altered_plan_file_is_refused(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    plan_file = tmp_path / "reconciler.plan"
    assert reconciler(backend, manifests, "plan", str(manifests.path), "--out", str(plan_file)).returncode == 0
    body = json.loads(plan_file.read_text())
    provider = next(c for c in body["changes"] if c["kind"] == "Provider")
    provider["after"]["base_url"] = "https://attacker.example.com/v1"
    plan_file.write_text(json.dumps(body, indent=2))  # an edit in place: the order kept
    done = reconciler(backend, manifests, "apply", str(plan_file))
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "altered", "signature")
    assert object_count(backend.url) == 0 and history(backend.url) == []


def test_a_plan_for_another_store_is_refused(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    plan_file = tmp_path / "reconciler.plan"
    assert reconciler(backend, manifests, "plan", str(manifests.path), "--out", str(plan_file)).returncode == 0
    other = f"sqlite:///{tmp_path / 'other' / 'store.db'}"
    done = run_cli("apply", str(plan_file), "--store", other, env=manifests.env)
    assert done.returncode == 1
    assert_one_line_error(done.stderr, f"was made for store {backend.url}", f"not {other}")
    assert object_count(other) == 0 and object_count(backend.url) == 0


# -- machine output -------------------------------------------------------------------------------


def test_json_goes_to_stdout_alone(backend: Backend, manifests: Manifests) -> None:
    planned = reconciler(backend, manifests, "plan", str(manifests.path), "--format", "json")
    # stderr: at most the note that a SQLite file is not there yet (read as empty)
    others = [line for line in planned.stderr.splitlines() if not line.startswith("Note: no SQLite store at ")]
    assert planned.returncode == 0 and others == []
    plan = json.loads(planned.stdout)
    assert plan["format_version"] == FORMAT_VERSION and plan["summary"]["create"] == len(plan["changes"])
    applied = reconciler(backend, manifests, "apply", str(manifests.path), "--format", "json")
    assert applied.returncode == 0 and applied.stderr == ""
    report = json.loads(applied.stdout)
    assert report["format_version"] == FORMAT_VERSION and report["status"] == "success"
    assert report["summary"]["applied"] == len(plan["changes"])
    markdown = reconciler(backend, manifests, "plan", str(manifests.path), "--format", "markdown")
    assert markdown.returncode == 0 and markdown.stderr == "" and markdown.stdout.strip()


# -- pruning ----------------------------------------------------------------------------------------


def test_unlisted_objects_are_unmanaged_until_pruned(
    backend: Backend, manifests: Manifests, tmp_path: Path
) -> None:
    apply_ok(backend, manifests)
    count = object_count(backend.url)
    remove_vercel(manifests)
    plan = plan_json(backend, manifests)
    assert set(plan["unmanaged"]) >= VERCEL_IDS
    assert "delete" not in {c["action"] for c in plan["changes"]}
    applied = json.loads(apply_ok(backend, manifests, "--format", "json").stdout)
    assert "delete" not in {c["action"] for c in applied["changes"]}
    assert object_count(backend.url) == count

    pruning = plan_json(backend, manifests, "--prune")
    assert {(c["action"], f"{c['kind']}/{c['key']}") for c in pruning["changes"]} == {
        ("delete", ident) for ident in VERCEL_IDS
    }
    report_file = tmp_path / "report.json"
    apply_ok(backend, manifests, "--prune", "--report", str(report_file))
    report = json.loads(report_file.read_text())
    assert {(c["action"], c["status"]) for c in report["changes"]} == {("delete", "applied")}
    assert object_count(backend.url) == count - len(VERCEL_IDS)
    store = opened(backend.url)
    try:
        assert ("vercel",) not in store.read().of("Provider")
    finally:
        store.close()
    done = reconciler(backend, manifests, "plan", str(manifests.path), "--prune", "--detailed-exitcode")
    assert done.returncode == 0, done.stdout


def test_max_deletes_refuses_and_writes_nothing(backend: Backend, manifests: Manifests) -> None:
    apply_ok(backend, manifests)
    remove_vercel(manifests)
    before = storage_snapshot(backend)
    done = reconciler(backend, manifests, "apply", str(manifests.path), "--prune", "--max-deletes", "2")
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "apply refused", "deletes or replaces 3 objects", "--max-deletes 2")
    assert storage_snapshot(backend) == before
    planned = reconciler(backend, manifests, "plan", str(manifests.path), "--prune", "--max-deletes", "2")
    assert planned.returncode == 1 and "--max-deletes 2" in planned.stdout


# -- secrets and the encryption key -----------------------------------------------------------------


def test_missing_secrets_fail_the_apply_before_any_write(backend: Backend, manifests: Manifests) -> None:
    key_file = next((manifests.path.parent / "secrets").iterdir())
    key_file.unlink()
    done = reconciler(backend, manifests, "apply", str(manifests.path),
                      env=manifests.with_env(ACME_OPENAI_API_KEY=None))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()  # every missing secret at once, one per line
    assert lines[0] == "Error: nothing was applied: 2 secrets cannot be read:"
    assert [line.strip().split(":")[0:2] for line in lines[1:]] == [
        ["secret reference env", "ACME_OPENAI_API_KEY"], ["secret reference file", str(key_file)]]
    for value in secret_values(manifests):
        assert value not in done.stderr and value not in done.stdout
    assert object_count(backend.url) == 0 and history(backend.url) == []


def test_a_missing_secret_of_one_update_writes_nothing(backend: Backend, manifests: Manifests) -> None:
    key_file = next((manifests.path.parent / "secrets").iterdir())
    apply_ok(backend, manifests)
    key_file.unlink()  # llm-internal's key: not needed, as llm-internal does not change
    before = storage_snapshot(backend)
    env = manifests.with_env(ACME_OPENAI_API_KEY="sk-test-rotated-openai-0001", ACME_OPENAI_API_KEY_SECONDARY=None,
                             ACME_GEMINI_API_KEY="sk-test-rotated-gemini-0001")
    done = reconciler(backend, manifests, "apply", str(manifests.path), env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "1 secret cannot be read" in done.stderr and "env:ACME_OPENAI_API_KEY_SECONDARY" in done.stderr
    assert "rotated" not in done.stderr and "file:" not in done.stderr
    assert storage_snapshot(backend) == before


def test_a_missing_encryption_key_fails_before_any_write(backend: Backend, manifests: Manifests) -> None:
    done = reconciler(backend, manifests, "apply", str(manifests.path),
                      env=manifests.with_env(**{ENCRYPTION_KEY_ENV: None}))
    assert done.returncode == 1
    assert_one_line_error(done.stderr, f"{ENCRYPTION_KEY_ENV} is not set", "openssl rand -base64 32")
    assert object_count(backend.url) == 0 and history(backend.url) == []


def test_the_wrong_encryption_key_is_refused(backend: Backend, manifests: Manifests) -> None:
    apply_ok(backend, manifests)
    old_key = manifests.env[ENCRYPTION_KEY_ENV]
    new_key = new_encryption_key()
    rotated = {"ACME_GEMINI_API_KEY": "sk-test-rotated-gemini-0001"}
    before = storage_snapshot(backend)
    done = reconciler(backend, manifests, "apply", str(manifests.path),
                      env=manifests.with_env(**rotated, **{ENCRYPTION_KEY_ENV: new_key}))
    assert done.returncode == 1
    line = assert_one_line_error(done.stderr, f"{ENCRYPTION_KEY_ENV} holds none of the keys")
    assert new_key not in line and old_key not in line
    assert storage_snapshot(backend) == before
    # listing the old key after the new one rotates
    both = manifests.with_env(**rotated, **{ENCRYPTION_KEY_ENV: f"{new_key},{old_key}"})
    assert reconciler(backend, manifests, "apply", str(manifests.path), env=both).returncode == 0


# -- unreachable stores and the lock --------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_an_unreachable_postgresql_is_one_line(command: str, manifests: Manifests) -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/test"
    done = run_cli(command, str(manifests.path), "--store", url, env=manifests.env)
    assert done.returncode == 1, done.stdout
    line = assert_one_line_error(done.stderr, "cannot connect to PostgreSQL at 127.0.0.1:1/test: ")
    assert "hunter2" not in line and done.stdout == ""


def test_a_sqlite_store_that_cannot_be_created_is_one_line(manifests: Manifests, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be\n")
    done = run_cli("apply", str(manifests.path), "--store", f"sqlite:///{blocker}/store.db", env=manifests.env)
    assert done.returncode == 1, done.stdout
    assert_one_line_error(done.stderr, f"{blocker}/store.db", "Not a directory")
    assert done.stdout == ""


def test_a_held_lock_times_out_naming_the_holder(backend: Backend, manifests: Manifests) -> None:
    with lock_held_by(backend.url, "nightly-cron@runner-3") as holder:
        started = time.monotonic()
        done = reconciler(backend, manifests, "apply", str(manifests.path), "--lock-timeout", "1")
        waited = time.monotonic() - started
        assert done.returncode == 1
        assert_one_line_error(done.stderr, "the store is locked by nightly-cron@runner-3",
                              f"(pid {holder.pid} on host ", "gave up after 1 s")
        assert waited >= 1
        assert object_count(backend.url) == 0
    # the holder was killed: its lock went with it
    apply_ok(backend, manifests, "--lock-timeout", "10")
