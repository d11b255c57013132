"""`reconciler` against a fake Coder through the real entry point: examples, partial failure, the token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cliharness import BEDROCK_STATIC
from tests.conftest import EXAMPLES, run_cli
from tests.fakecoder import FakeCoder, fixtures

fake_coder = fixtures.fake_coder

EXAMPLE_KEYS = (
    "ACME_ANTHROPIC_API_KEY", "ACME_ANTHROPIC_API_KEY_SECONDARY", "ACME_OPENAI_API_KEY",
    "ACME_OPENAI_API_KEY_SECONDARY", "ACME_AZURE_OPENAI_API_KEY", "ACME_GEMINI_API_KEY",
    "ACME_OPENROUTER_API_KEY", "ACME_VERCEL_AI_GATEWAY_API_KEY",
)
FILE_KEY = "/run/secrets/acme-llm-internal-key"


def env_for(fake: FakeCoder, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CODER_SESSION_TOKEN": fake.token, "RECONCILER_STORE": "coder+" + fake.url,
            "XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}


def shown(*texts: str) -> str:
    return "\n".join(texts)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """The examples, with the file secret moved under tmp_path."""
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy)
    key_file = tmp_path / "llm-internal-key"
    key_file.write_text("sk-litellm-internal-0000000000001\n")
    provider = copy / "providers" / "llm-internal.yaml"
    provider.write_text(provider.read_text().replace(FILE_KEY, str(key_file)))
    return copy


def test_examples_apply_then_plan_shows_no_changes(fake_coder: FakeCoder, examples: Path,
                                                   tmp_path: Path) -> None:
    keys = {name: f"sk-{name.lower().replace('_', '-')}-0123456789" for name in EXAMPLE_KEYS}
    env = env_for(fake_coder, tmp_path, **keys)
    report = tmp_path / "report.json"
    applied = run_cli("apply", str(examples), "--report", str(report), env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    data = json.loads(report.read_text())
    assert data["status"] == "success" and data["summary"] == {"applied": 49, "failed": 0, "skipped": 0}
    assert fake_coder.server_errors == []

    fake_coder.reset_requests()
    planned = run_cli("plan", str(examples), "--detailed-exitcode", env=env)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "No changes." in planned.stdout
    # organizations, providers, prices, the toggle, build info, experiments, entitlements, the
    # authcheck (a POST that writes nothing), the organization's models and overrides
    assert len(fake_coder.requests) == 10
    assert {r.method for r in fake_coder.requests if r.path != "/api/v2/authcheck"} == {"GET"}

    without_secrets = env_for(fake_coder, tmp_path)  # a pull-request job has no keys
    planned = run_cli("plan", str(examples), "--detailed-exitcode", env=without_secrets)
    assert planned.returncode == 0, planned.stdout + planned.stderr

    # a changed key shows, and --rotate-secrets resends every key
    rotated = {**keys, "ACME_OPENAI_API_KEY": "sk-openai-rotated-0000000009"}
    planned = run_cli("plan", str(examples), "--format", "json", env={**env, **rotated})
    changes = json.loads(planned.stdout)["changes"]
    assert [(c["key"], c["diff"]) for c in changes] == [("openai", [
        {"path": "api_keys[0]", "sensitive": True, "note": "(sensitive value changed)"}])]
    planned = run_cli("plan", str(examples), "--rotate-secrets", "--format", "json", env=env)
    assert len(json.loads(planned.stdout)["changes"]) == 7  # every provider with api_keys
    applied = run_cli("apply", str(examples), "--rotate-secrets", env={**env, **rotated})
    assert applied.returncode == 0 and "7 applied, 0 failed" in applied.stdout
    assert rotated["ACME_OPENAI_API_KEY"] in fake_coder.secrets_seen
    planned = run_cli("plan", str(examples), "--detailed-exitcode", env={**env, **rotated})
    assert planned.returncode == 0, planned.stdout

    outputs = shown(applied.stdout, applied.stderr, planned.stdout, planned.stderr, report.read_text())
    assert fake_coder.token not in outputs
    assert all(value not in outputs for value in rotated.values())


STAGE_ONE = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {name: internal}
spec:
  type: openai-compat
  base_url: https://llm.internal.example.com/v1
  api_keys: [{env: INTERNAL_KEY}]
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: qwen}
spec: {provider: internal, model: qwen3, context_limit: 128000, default: true, display_name: Qwen3}
"""
STAGE_TWO = """\
---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: anthropic}
spec:
  type: anthropic
  api_keys: [{env: ANTHROPIC_KEY}]
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: sonnet}
spec:
  provider: anthropic
  model: claude-sonnet-4-5
  context_limit: 200000
  config: {reasoning_effort: {default: medium, max: high}}
---
apiVersion: reconciler/v1
kind: Overrides
metadata: {name: org}
spec:
  contexts:
    general: {model: sonnet, reasoning_effort: high}
"""


def test_a_partial_failure_reports_each_change_exits_1_and_the_next_run_converges(
    fake_coder: FakeCoder, tmp_path: Path
) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "all.yaml").write_text(STAGE_ONE)
    secrets = {"INTERNAL_KEY": "sk-internal-0123456789abcdef", "ANTHROPIC_KEY": "sk-ant-api03-0123456789abcd"}
    env = env_for(fake_coder, tmp_path, **secrets)
    assert run_cli("apply", str(manifests), env=env).returncode == 0

    (manifests / "all.yaml").write_text(STAGE_ONE.replace("Qwen3", "Qwen 3") + STAGE_TWO)
    fake_coder.inject(400, method="POST", path_prefix="/api/v2/ai/providers", body={
        "message": "Invalid AI provider request.", "detail": "",
        "validations": [{"field": "base_url", "detail": "base_url is not allowed here"}]})
    report = tmp_path / "report.json"
    failed = run_cli("apply", str(manifests), "--report", str(report), env=env)
    assert failed.returncode == 1
    changes = {c["key"]: c for c in json.loads(report.read_text())["changes"]}
    assert {k: c["status"] for k, c in changes.items()} == {
        "anthropic": "failed",
        "coder/internal/qwen3": "applied",
        "coder/anthropic/claude-sonnet-4-5": "skipped",
        "coder/general": "skipped",
    }
    assert changes["anthropic"]["error"] == "Coder answered 400 Bad Request: Invalid AI provider request."
    assert changes["anthropic"]["details"] == ["base_url: base_url is not allowed here"]
    assert changes["coder/general"]["error"] == (
        "not attempted: Model/coder/anthropic/claude-sonnet-4-5 did not succeed")
    assert "failed create Provider/anthropic: Coder answered 400" in failed.stdout
    assert "          base_url: base_url is not allowed here" in failed.stdout
    assert "Apply failed: 1 applied, 1 failed, 2 skipped." in failed.stdout

    locks = tmp_path / "locks.db"
    again = run_cli("apply", str(manifests), "--lock-store", f"sqlite:///{locks}", "--parallelism", "1",
                    env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "locks.db.lock").is_file()  # the SQL store's lock, not the local lock file
    assert "Apply complete: 3 applied, 0 failed, 0 skipped." in again.stdout
    assert run_cli("plan", str(manifests), "--detailed-exitcode", env=env).returncode == 0
    outputs = shown(failed.stdout, failed.stderr, again.stdout, again.stderr, report.read_text())
    assert fake_coder.token not in outputs
    assert all(value not in outputs for value in secrets.values())


def test_the_token_never_shows_and_bad_tokens_fail_plainly(fake_coder: FakeCoder, tmp_path: Path) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "all.yaml").write_text(STAGE_ONE)
    wrong = "wrong-token-7f3a9c1e5b"
    token_file = tmp_path / "token"
    token_file.write_text(wrong + "\n")
    env = env_for(fake_coder, tmp_path)
    for command in ("plan", "apply"):
        result = run_cli(command, str(manifests), "--token-file", str(token_file), "-v", env=env)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"Error: cannot read /api/v2/organizations from coder+{fake_coder.url}: Coder answered 401 "
            "Unauthorized: You must be logged in to use this endpoint. (The session token is invalid or "
            "has expired.)")
        assert wrong not in result.stdout + result.stderr and "Traceback" not in result.stderr
    missing = run_cli("plan", str(manifests), env={**env, "CODER_SESSION_TOKEN": ""})
    assert missing.returncode == 1
    assert "no Coder session token: set CODER_SESSION_TOKEN or pass --token-file" in missing.stderr
    remote = run_cli("plan", str(manifests), "--store", "coder+http://coder.example.com", env=env)
    assert remote.returncode == 1 and "only for loopback" in remote.stderr


def test_write_only_bedrock_keys_settle_and_rotate_on_request(fake_coder: FakeCoder, tmp_path: Path) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "bedrock.yaml").write_text(BEDROCK_STATIC)
    keys = {"AWS_ACCESS_KEY_ID": "AKIACANARY0000000001", "AWS_SECRET_ACCESS_KEY": "aws-secret-canary-000000001"}
    env = env_for(fake_coder, tmp_path, **keys)
    applied = run_cli("apply", str(manifests), env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert keys["AWS_SECRET_ACCESS_KEY"] in fake_coder.secrets_seen
    # Coder never shows the keys again: the plan must settle, and say it could not verify them
    planned = run_cli("plan", str(manifests), "--detailed-exitcode", env=env)
    assert planned.returncode == 0, planned.stdout
    assert "(write-only, not verifiable)" in planned.stdout and "env:AWS_SECRET_ACCESS_KEY" in planned.stdout
    rotated = {**keys, "AWS_SECRET_ACCESS_KEY": "aws-secret-canary-000000002"}
    planned = run_cli("plan", str(manifests), "--rotate-secrets", "--format", "json", env={**env, **rotated})
    (change,) = json.loads(planned.stdout)["changes"]
    assert change["action"] == "update" and change["needs"] == ["env:AWS_ACCESS_KEY_ID", "env:AWS_SECRET_ACCESS_KEY"]
    assert run_cli("apply", str(manifests), "--rotate-secrets", env={**env, **rotated}).returncode == 0
    assert rotated["AWS_SECRET_ACCESS_KEY"] in fake_coder.secrets_seen
    output = shown(planned.stdout, planned.stderr)
    assert all(value not in output for value in (*keys.values(), *rotated.values()))
