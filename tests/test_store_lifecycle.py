"""Store lifecycle through the CLI: protect outlives its manifest, plan creates nothing, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import KEY_A, run_cli

PROVIDER = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: {name}
  labels: {{team: platform}}
  annotations: {annotations}
spec:
  type: openai
"""


def write(folder: Path, names: dict[str, str]) -> None:
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, notes in names.items():
        (folder / f"{name}.yaml").write_text(PROVIDER.format(name=name, annotations=notes))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    manifests = tmp_path / "m"
    manifests.mkdir()
    return manifests, f"sqlite:///{tmp_path}/s.db", {"RECONCILER_ENCRYPTION_KEY": KEY_A}


def test_protected_object_is_not_pruned_after_its_manifest_is_gone(setup) -> None:
    manifests, store, env = setup
    write(manifests, {"keep": '{"reconciler/protect": "true"}', "drop": "{}", "stay": "{}"})
    assert run_cli("apply", str(manifests), "--store", store, env=env).returncode == 0
    write(manifests, {"stay": "{}"})
    plan = run_cli("plan", str(manifests), "--store", store, "--prune", "--format", "json", env=env)
    data = json.loads(plan.stdout)
    assert [(c["action"], c["key"]) for c in data["changes"]] == [("delete", "drop")]
    assert any("Provider/keep is protected" in note for note in data["notes"])
    applied = run_cli("apply", str(manifests), "--store", store, "--prune", "--format", "json", env=env)
    assert applied.returncode == 0
    after = run_cli("plan", str(manifests), "--store", store, "--format", "json", env=env)
    assert json.loads(after.stdout)["unmanaged"] == ["Provider/keep"]


def test_annotation_change_alone_is_an_update_and_then_settles(setup) -> None:
    manifests, store, env = setup
    write(manifests, {"a": "{}"})
    assert run_cli("apply", str(manifests), "--store", store, env=env).returncode == 0
    write(manifests, {"a": '{"reconciler/protect": "true"}'})
    plan = json.loads(run_cli("plan", str(manifests), "--store", store, "--format", "json", env=env).stdout)
    (change,) = plan["changes"]
    assert change["action"] == "update"
    assert change["diff"] == [{"path": "metadata.annotations.reconciler/protect", "before": None, "after": "true"}]
    assert run_cli("apply", str(manifests), "--store", store, env=env).returncode == 0
    again = run_cli("plan", str(manifests), "--store", store, "--detailed-exitcode", env=env)
    assert again.returncode == 0, again.stdout


def test_replacing_a_protected_object_is_refused(setup) -> None:
    manifests, store, env = setup
    write(manifests, {"a": '{"reconciler/protect": "true"}'})
    assert run_cli("apply", str(manifests), "--store", store, env=env).returncode == 0
    (manifests / "a.yaml").write_text((manifests / "a.yaml").read_text().replace("type: openai", "type: openrouter"))
    result = run_cli("apply", str(manifests), "--store", store, env=env)
    assert result.returncode == 1
    assert "protected" in result.stderr and "replaces it" in result.stderr


def test_plan_does_not_create_a_store_and_apply_does(tmp_path: Path) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    write(manifests, {"a": "{}"})
    db = tmp_path / "state" / "s.db"
    env = {"RECONCILER_ENCRYPTION_KEY": KEY_A}
    plan = run_cli("plan", str(manifests), "--store", f"sqlite:///{db}", "--detailed-exitcode", env=env)
    assert plan.returncode == 2 and "1 to create" in plan.stdout
    assert not (tmp_path / "state").exists()
    assert run_cli("apply", str(manifests), "--store", f"sqlite:///{db}", env=env).returncode == 0
    assert db.exists() and oct(db.stat().st_mode & 0o777) == "0o600"


def test_history_lists_applies_and_reading_it_creates_nothing(setup, tmp_path: Path) -> None:
    manifests, store, env = setup
    missing = run_cli("history", "--store", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 0 and "No applies recorded yet" in missing.stdout
    assert not (tmp_path / "none.db").exists()
    write(manifests, {"a": "{}"})
    assert run_cli("apply", str(manifests), "--store", store, env=env).returncode == 0
    assert run_cli("apply", str(manifests), "--store", store, env=env).returncode == 0  # no-op: no row
    data = json.loads(run_cli("history", "--store", store, "--format", "json").stdout)
    (entry,) = data["history"]
    assert entry["tool_version"] and "pid" in entry["who"]
    assert [r["status"] for r in entry["results"]] == ["applied"]
    assert entry["plan"]["summary"]["create"] == 1


def test_rekey_rotates_to_the_first_key(setup, tmp_path: Path) -> None:
    from tests.conftest import KEY_B

    manifests, store, env = setup
    (manifests / "p.yaml").write_text(PROVIDER.format(name="p", annotations="{}") + "  api_keys: [{env: K}]\n")
    assert run_cli("apply", str(manifests), "--store", store, env={**env, "K": "sk-rotate-canary-0001"}).returncode == 0
    rotated = run_cli("rekey", "--store", store, env={"RECONCILER_ENCRYPTION_KEY": f"{KEY_B},{KEY_A}"})
    assert rotated.returncode == 0 and "Re-encrypted 1 secret" in rotated.stderr
    # only the new key now: writing a changed secret works, and the old key alone is refused
    changed = {"RECONCILER_ENCRYPTION_KEY": KEY_B, "K": "sk-rotate-canary-0002"}
    assert run_cli("apply", str(manifests), "--store", store, env=changed).returncode == 0
    old_only = run_cli("apply", str(manifests), "--store", store, "--rotate-secrets",
                       env={**env, "K": "sk-rotate-canary-0002"})
    assert old_only.returncode == 1 and "RECONCILER_ENCRYPTION_KEY" in old_only.stderr
    assert "sk-rotate-canary" not in old_only.stdout + old_only.stderr
