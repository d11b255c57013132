"""Claude Platform for AWS (`settings.claude_platform_aws` on type anthropic, Coder 2.38+), end to end
through the CLI: validate -> apply -> plan (no changes) -> export -> validate and plan again, on the
fake Coder and on both SQL stores; the settings Coder holds are exactly what the manifest says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import KEY_A, run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.storefixtures import Backend, backend  # noqa: F401 (fixture)

fake_coder = fixtures.fake_coder

KEY = "sk-ant-api03-claude-platform-00000001"
MANIFESTS = """\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: claude-aws
spec:
  type: anthropic
  settings:
    claude_platform_aws:
      region: us-east-1
      workspace_id: wrkspc_01AbCdEf
---
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: claude-aws-keyed
spec:
  type: anthropic
  base_url: https://claude-proxy.acme.example
  api_keys:
    - env: ACME_CLAUDE_PLATFORM_KEY
  settings:
    claude_platform_aws:
      region: eu-west-1
      workspace_id: wrkspc_02GhIjKl
---
apiVersion: reconciler/v1
kind: Model
metadata:
  name: sonnet-on-aws
spec:
  provider: claude-aws
  model: claude-sonnet-4-5
  context_limit: 200000
  default: true
"""


def write(tmp_path: Path, text: str = MANIFESTS) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "claude.yaml").write_text(text)
    return folder


def coder_env(fake: FakeCoder, tmp_path: Path) -> dict[str, str]:
    return {"CODER_SESSION_TOKEN": fake.token, "RECONCILER_STORE": "coder+" + fake.url,
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "ACME_CLAUDE_PLATFORM_KEY": KEY}


def round_trip(tmp_path: Path, env: dict[str, str]) -> Path:
    """apply, then plan (empty), export, validate the export and plan it (empty); the export dir."""
    manifests = write(tmp_path)
    applied = run_cli("apply", str(manifests), env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    planned = run_cli("plan", str(manifests), "--detailed-exitcode", env=env)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    out = tmp_path / "exported"
    exported = run_cli("export", "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    assert run_cli("validate", str(out)).returncode == 0
    replanned = run_cli("plan", str(out), "--detailed-exitcode", env=env)
    assert replanned.returncode == 0, replanned.stdout + replanned.stderr
    assert KEY not in "".join(p.read_text() for p in out.rglob("*.yaml")) + applied.stdout + applied.stderr
    return out


def exported_spec(out: Path, name: str) -> dict:
    return yaml.safe_load((out / "providers" / f"{name}.yaml").read_text())["spec"]


def test_the_coder_store_writes_reads_and_exports_the_settings(fake_coder: FakeCoder, tmp_path: Path) -> None:
    out = round_trip(tmp_path, coder_env(fake_coder, tmp_path))
    held = {p.name: p for p in fake_coder.state.providers.values()}
    assert held["claude-aws"].settings == {"_type": "claude_platform_aws", "region": "us-east-1",
                                           "workspace_id": "wrkspc_01AbCdEf"}
    assert held["claude-aws"].base_url == "https://aws-external-anthropic.us-east-1.api.aws"
    assert held["claude-aws"].api_keys == []  # the gateway's ambient AWS credentials
    assert [k.secret for k in held["claude-aws-keyed"].api_keys] == [KEY]
    assert exported_spec(out, "claude-aws") == {  # the region's endpoint is the default: left out
        "type": "anthropic",
        "settings": {"claude_platform_aws": {"region": "us-east-1", "workspace_id": "wrkspc_01AbCdEf"}}}
    assert exported_spec(out, "claude-aws-keyed")["base_url"] == "https://claude-proxy.acme.example"


def test_a_changed_workspace_is_one_settings_update(fake_coder: FakeCoder, tmp_path: Path) -> None:
    env = coder_env(fake_coder, tmp_path)
    round_trip(tmp_path, env)
    manifests = write(tmp_path, MANIFESTS.replace("wrkspc_01AbCdEf", "wrkspc_03MnOpQr"))
    planned = run_cli("plan", str(manifests), "--format", "json", env=env)
    changes = json.loads(planned.stdout)["changes"]
    assert [(c["action"], c["key"], [d["path"] for d in c["diff"]]) for c in changes] == [
        ("update", "claude-aws", ["settings.claude_platform_aws.workspace_id"])]
    applied = run_cli("apply", str(manifests), env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    held = {p.name: p for p in fake_coder.state.providers.values()}
    assert held["claude-aws"].settings["workspace_id"] == "wrkspc_03MnOpQr"


def test_sql_stores_keep_the_settings(backend: Backend, tmp_path: Path) -> None:  # noqa: F811
    env = {"RECONCILER_STORE": backend.url, "RECONCILER_ENCRYPTION_KEY": KEY_A, "ACME_CLAUDE_PLATFORM_KEY": KEY}
    out = round_trip(tmp_path, env)
    assert exported_spec(out, "claude-aws-keyed")["settings"] == {
        "claude_platform_aws": {"region": "eu-west-1", "workspace_id": "wrkspc_02GhIjKl"}}
    assert KEY.encode() not in backend.dump()


@pytest.mark.parametrize(
    ("settings", "code", "needle"),
    [
        ("    claude_platform_aws: {region: us-east-1}\n", "RC201", "missing required field 'workspace_id'"),
        ("    claude_platform_aws: {workspace_id: w}\n", "RC201", "missing required field 'region'"),
        ("    claude_platform_aws: {region: Virginia, workspace_id: w}\n", "RC426", "not an AWS region"),
        ("    claude_platform_aws: {region: us-east-1, workspace_id: w, role_arn: x}\n", "RC201",
         "unknown field"),
    ],
)
def test_validation_names_what_is_wrong(tmp_path: Path, settings: str, code: str, needle: str) -> None:
    text = ("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: claude-aws}\n"
            "spec:\n  type: anthropic\n  settings:\n" + settings)
    result = run_cli("validate", str(write(tmp_path, text)), "--format", "json")
    assert result.returncode == 1
    found = json.loads(result.stdout)["diagnostics"]
    assert any(d["code"] == code and needle in d["message"] and d["line"] == 7 for d in found), found


def test_coder_2_37_is_refused_at_plan_time_with_the_version(fake_coder: FakeCoder, tmp_path: Path) -> None:
    fake_coder.version = "v2.37.2"
    planned = run_cli("plan", str(write(tmp_path)), env=coder_env(fake_coder, tmp_path))
    assert planned.returncode == 1
    assert "provider settings claude_platform_aws need Coder v2.38 or later; this server is v2.37.2" in (
        planned.stdout + planned.stderr)
    applied = run_cli("apply", str(write(tmp_path)), env=coder_env(fake_coder, tmp_path))
    assert applied.returncode == 1 and fake_coder.state.providers == {}
