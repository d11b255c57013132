"""The JSON outputs (validate, plan, apply report, history) against their JSON Schemas in
schemas/outputs/, on outputs with every kind of content: errors and warnings, creates, updates,
deletes and unmanaged objects, a failed apply, history with and without provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.cliharness import example_manifests
from tests.conftest import ROOT, run_cli
from tests.fakecoder import FakeCoder, fixtures

fake_coder = fixtures.fake_coder

OUTPUTS = ROOT / "schemas" / "outputs"


def check(name: str, data: Any) -> None:
    schema = json.loads((OUTPUTS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_the_schemas_refuse_what_they_should() -> None:
    with pytest.raises(AssertionError):
        check("plan", {"format_version": "1", "changes": [], "summary": {}, "unmanaged": [], "notes": [],
                       "refusal": "", "unverifiable_secrets": [], "surprise": 1})
    with pytest.raises(AssertionError):
        check("validate", {"format_version": "1", "valid": True, "files": 1, "documents": 1,
                           "summary": {"errors": 0, "warnings": 0},
                           "diagnostics": [{"file": "a", "line": 1, "column": 1, "severity": "fatal", "code": "RC1",
                                            "path": "", "message": ""}]})


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    manifests = example_manifests(tmp_path)
    return manifests.path, {**manifests.env, "RECONCILER_STORE": f"sqlite:///{tmp_path / 'store.db'}"}


def test_validate_json(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, _ = repo
    check("validate", json.loads(run_cli("validate", str(path), "--format", "json").stdout))
    openai = path / "providers" / "openai.yaml"
    openai.write_text(openai.read_text().replace("https://api.openai.com/v1", "http://api.openai.com/v1/models"))
    broken = json.loads(run_cli("validate", str(path), str(tmp_path / "missing"), "--format", "json").stdout)
    assert {d["severity"] for d in broken["diagnostics"]} == {"error", "warning"}
    assert any(d["line"] == 0 for d in broken["diagnostics"])
    check("validate", broken)


def test_plan_apply_report_and_history_json(repo: tuple[Path, dict[str, str]]) -> None:
    path, env = repo
    plan = json.loads(run_cli("plan", str(path), "--format", "json", env=env).stdout)
    assert plan["summary"]["create"] > 0
    check("plan", plan)
    applied = run_cli("apply", str(path), "--format", "json", env={**env, "GITHUB_SHA": "a" * 40,
                                                                  "GITHUB_SERVER_URL": "https://github.com",
                                                                  "GITHUB_REPOSITORY": "acme/gw", "GITHUB_RUN_ID": "9"})
    assert applied.returncode == 0, applied.stderr
    check("apply-report", json.loads(applied.stdout))

    # updates, a delete and an unmanaged object, a sensitive change
    model = path / "models" / "anthropic.yaml"
    model.write_text(model.read_text().replace("display_name: Claude Sonnet 4.5", "display_name: Sonnet", 1))
    (path / "providers" / "vercel.yaml").unlink()
    (path / "models" / "vercel.yaml").unlink()
    changed = {**env, "ACME_OPENAI_API_KEY": "sk-test-rotated-0123456789"}
    plan = json.loads(run_cli("plan", str(path), "--format", "json", env=changed).stdout)
    assert plan["summary"]["update"] and plan["unmanaged"]
    check("plan", plan)
    pruned = json.loads(run_cli("plan", str(path), "--prune", "--format", "json", env=changed).stdout)
    assert pruned["summary"]["delete"]
    check("plan", pruned)
    applied = run_cli("apply", str(path), "--prune", "--format", "json", env=changed)
    assert applied.returncode == 0, applied.stderr
    check("apply-report", json.loads(applied.stdout))

    history = json.loads(run_cli("history", "--format", "json", env=env).stdout)
    assert len(history["history"]) == 2 and history["history"][-1]["commit"] == "a" * 40
    check("history", history)


def test_a_failed_apply_report(fake_coder: FakeCoder, repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, env = repo
    env = {**env, "CODER_SESSION_TOKEN": fake_coder.token, "RECONCILER_STORE": "coder+" + fake_coder.url,
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    fake_coder.inject(400, times=1000, method="POST", body={"message": "refused by the test"})
    report_file = tmp_path / "report.json"
    failed = run_cli("apply", str(path), "--report", str(report_file), "--deadline", "5", env=env)
    assert failed.returncode == 1
    report = json.loads(report_file.read_text())
    assert report["status"] == "failed" and report["summary"]["failed"] >= 1
    assert any(c["status"] == "failed" and c.get("error") for c in report["changes"])
    check("apply-report", report)
