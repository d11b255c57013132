"""The Coder store against what a real deployment does, through the CLI: an organization admin's
token, experiments, entitlements, 404 for a missing right, model access lists, a model the token
cannot see, and a provider whose deleted name Coder keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.fakecoder.people import add_group, add_user

fake_coder = fixtures.fake_coder
KEYS = {"OPENAI_KEY": "sk-openai-key-0123456789abcdef"}
PROVIDER = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: openai}
spec: {type: %s, api_keys: [{env: OPENAI_KEY}]%s}
"""
MODEL = """apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt}
spec:
  provider: openai
  model: gpt-5
  default: true
  context_limit: 400000
  pricing: {input: 1.25, output: 10}
%s"""
SETTINGS = """apiVersion: reconciler/v1
kind: Settings
metadata: {name: deployment}
spec: {personal_model_overrides: {allow_users: true}}
"""
ADVISOR = """apiVersion: reconciler/v1
kind: Overrides
metadata: {name: contexts}
spec:
  contexts:
    general: {model: gpt}
    advisor: {model: gpt}
"""


def env(fake: FakeCoder, tmp_path: Path) -> dict[str, str]:
    return {"CODER_SESSION_TOKEN": fake.token, "RECONCILER_STORE": "coder+" + fake.url,
            "XDG_CACHE_HOME": str(tmp_path / "cache"), **KEYS}


def manifests(root: Path, *documents: str, provider_type: str = "openai", extra: str = "") -> Path:
    root.mkdir(exist_ok=True)
    for old in root.glob("*.yaml"):
        old.unlink()
    (root / "provider.yaml").write_text(PROVIDER % (provider_type, extra))
    for i, document in enumerate(documents):
        (root / f"doc{i}.yaml").write_text(document)
    return root


def plan(root: Path, fake: FakeCoder, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    done = run_cli("plan", str(root), "--format", "json", *args, env=env(fake, tmp_path))
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def apply(root: Path, fake: FakeCoder, tmp_path: Path) -> Any:
    done = run_cli("apply", str(root), env=env(fake, tmp_path))
    assert "Traceback" not in done.stderr
    return done


def writes(fake: FakeCoder) -> list[str]:
    return [f"{r.method} {r.path}" for r in fake.requests if r.method != "GET" and r.path != "/api/v2/authcheck"]


def test_an_org_admin_token_with_settings_is_told_why_at_plan_time(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m", MODEL % "")
    assert apply(root, fake_coder, tmp_path).returncode == 0  # the owner sets up the provider
    fake_coder.as_org_admin(fixtures.DEFAULT_ORGANIZATION)
    # the organization admin manages the organization's models without a word about Settings ...
    (root / "doc0.yaml").write_text(MODEL.replace("gpt-5\n", "gpt-5\n  display_name: GPT-5 (org)\n") % "")
    done = apply(root, fake_coder, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and a Settings manifest is refused at plan time with the real cause, nothing written
    (root / "settings.yaml").write_text(SETTINGS)
    fake_coder.reset_requests()
    code, body, _ = plan(root, fake_coder, tmp_path)
    assert code == 1
    assert "Settings need deployment-admin rights (deployment_config update); the token of user ci-bot lacks them" \
        in body["refusal"]
    assert "older" not in body["refusal"] and "v2.37" not in body["refusal"]
    done = apply(root, fake_coder, tmp_path)
    assert done.returncode == 1 and "deployment_config" in done.stderr
    assert writes(fake_coder) == [] and fake_coder.state.allow_users is False


def test_a_provider_change_needs_an_owner(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m", MODEL % "")
    fake_coder.as_org_admin(fixtures.DEFAULT_ORGANIZATION)
    code, body, _ = plan(root, fake_coder, tmp_path)
    assert code == 1 and "AI providers need an owner's token (ai_provider create)" in body["refusal"]
    assert [c["kind"] for c in body["changes"]] == ["Model"]  # the provider's create is not planned


def test_advisor_without_the_experiment_fails_at_plan_time_every_run(fake_coder: FakeCoder, tmp_path: Path) -> None:
    fake_coder.state.experiments.clear()
    root = manifests(tmp_path / "m", MODEL % "", ADVISOR)
    for _ in range(2):  # not a change planned on every run that fails every apply
        code, body, _ = plan(root, fake_coder, tmp_path)
        assert code == 1 and "needs the chat-advisor experiment" in body["refusal"]
        assert "Override/coder/advisor" not in [f"{c['kind']}/{c['key']}" for c in body["changes"]]
        fake_coder.reset_requests()
        done = apply(root, fake_coder, tmp_path)
        assert done.returncode == 1 and "chat-advisor" in done.stderr
        assert writes(fake_coder) == []
    fake_coder.state.experiments.add("chat-advisor")
    assert apply(root, fake_coder, tmp_path).returncode == 0
    code, body, _ = plan(root, fake_coder, tmp_path, "--detailed-exitcode")
    assert code == 0 and body["changes"] == []


def test_prices_without_the_add_on_are_refused(fake_coder: FakeCoder, tmp_path: Path) -> None:
    fake_coder.state.features.update(aibridge=False, ai_governance_user_limit=False)
    root = manifests(tmp_path / "m", MODEL % "")
    code, body, stderr = plan(root, fake_coder, tmp_path)
    assert code == 1, stderr
    assert "model prices need the AI Governance add-on" in body["refusal"]


def test_an_old_coder_is_still_named_as_such(fake_coder: FakeCoder, tmp_path: Path) -> None:
    fake_coder.version = "v2.36.4"
    fake_coder.missing_endpoints = {"models", "overrides"}
    root = manifests(tmp_path / "m", MODEL % "")
    code, body, _ = plan(root, fake_coder, tmp_path)
    assert code == 1 and "version v2.36.4" in body["refusal"] and "Coder v2.37 or later" in body["refusal"]


def test_access_lists_round_trip_through_coder(fake_coder: FakeCoder, tmp_path: Path) -> None:
    org_id = next(iter(fake_coder.state.organizations))
    alice = add_user(fake_coder.state, "alice")
    add_user(fake_coder.state, "bob")
    group = add_group(fake_coder.state, org_id, "ml-platform", [alice.id])
    root = manifests(tmp_path / "m", MODEL % "  access: {groups: [ml-platform], users: [alice]}\n")
    code, body, stderr = plan(root, fake_coder, tmp_path)
    assert code == 0, stderr
    assert apply(root, fake_coder, tmp_path).returncode == 0
    model = next(iter(fake_coder.state.models.values()))
    assert model.group_acl == {group.id: "read"} and model.user_acl == {alice.id: "read"}  # Everyone removed

    fake_coder.reset_requests()
    code, body, _ = plan(root, fake_coder, tmp_path, "--detailed-exitcode")
    assert (code, body["changes"]) == (0, [])
    # the no-change plan: the fixed reads, two for the organization's names, one per model with access
    assert len(fake_coder.requests) == 10 + 2 + 1

    (root / "doc0.yaml").write_text(MODEL % "  access: {groups: [Everyone], users: [bob]}\n")
    code, body, _ = plan(root, fake_coder, tmp_path)
    # lists diff element by element: one removed, one added
    assert body["changes"][0]["diff"] == [
        {"path": "access.groups[]", "before": "ml-platform", "after": None},
        {"path": "access.groups[]", "before": None, "after": "Everyone"},
        {"path": "access.users[]", "before": "alice", "after": None},
        {"path": "access.users[]", "before": None, "after": "bob"},
    ]
    assert apply(root, fake_coder, tmp_path).returncode == 0
    assert model.group_acl == {org_id: "read"} and set(model.user_acl) == {
        u.id for u in fake_coder.state.people.users.values() if u.username == "bob"}

    # without `access` the list is left as Coder has it
    (root / "doc0.yaml").write_text(MODEL % "")
    code, body, _ = plan(root, fake_coder, tmp_path, "--detailed-exitcode")
    assert (code, body["changes"]) == (0, [])

    exported = run_cli("export", "--out", str(tmp_path / "export"), env=env(fake_coder, tmp_path))
    assert exported.returncode == 0, exported.stderr
    # export reads every model's list and writes those that are not Coder's default (Everyone alone)
    assert "access:\n    groups:\n      - Everyone\n    users:\n      - bob\n" in (
        tmp_path / "export" / "models" / "openai.yaml").read_text()


def test_an_unknown_group_is_an_error_at_its_line(fake_coder: FakeCoder, tmp_path: Path) -> None:
    org_id = next(iter(fake_coder.state.organizations))
    add_group(fake_coder.state, org_id, "ml-platform", [])
    root = manifests(tmp_path / "m", MODEL % "  access:\n    groups: [Everyone, ml-platfrom]\n")
    done = run_cli("plan", str(root), env=env(fake_coder, tmp_path))
    assert done.returncode == 1
    assert "doc0.yaml:11:24" in done.stderr and "RC505" in done.stderr
    assert "group 'ml-platfrom' does not exist in organization coder; did you mean 'ml-platform'?" in done.stderr
    assert "nothing was planned" in done.stderr


def test_a_model_the_token_cannot_see_gets_a_clear_error(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m", MODEL % "  access: {groups: [], users: []}\n")
    assert apply(root, fake_coder, tmp_path).returncode == 0  # nobody may use it
    # a member whose token may create models but not read those outside its access lists
    org_id = next(iter(fake_coder.state.organizations))
    fake_coder.state.permissions = {f"chat_model_config:create@{org_id}", f"chat_model_config:update@{org_id}",
                                    f"chat_model_config:share@{org_id}", "ai_provider:read", "ai_model_price:read",
                                    "ai_model_price:update"}
    (root / "doc0.yaml").write_text(MODEL % "")
    code, body, _ = plan(root, fake_coder, tmp_path)
    assert any("may not read every model of organization coder" in note for note in body["notes"])
    fake_coder.reset_requests()
    done = apply(root, fake_coder, tmp_path)
    assert done.returncode == 1
    assert "already exists in organization coder, but this token cannot see it" in done.stdout + done.stderr
    assert len([w for w in writes(fake_coder) if w.startswith("POST") and "chats/models" in w]) == 2  # no loop


@pytest.mark.parametrize("reserved", [False, True])
def test_replacing_a_provider_when_coder_keeps_or_frees_its_name(fake_coder: FakeCoder, tmp_path: Path,
                                                                 reserved: bool) -> None:
    fake_coder.state.deleted_names_reserved = reserved
    root = manifests(tmp_path / "m", MODEL % "")
    assert apply(root, fake_coder, tmp_path).returncode == 0
    model_id = next(iter(fake_coder.state.models))
    manifests(root, MODEL % "", provider_type="openai-compat", extra=", base_url: 'https://llm.example/v1'")
    fake_coder.reset_requests()
    done = apply(root, fake_coder, tmp_path)
    posts = [w for w in writes(fake_coder) if w == "POST /api/v2/ai/providers"]
    if not reserved:
        assert done.returncode == 0, done.stdout + done.stderr
        provider = next(p for p in fake_coder.state.providers.values() if not p.deleted)
        assert fake_coder.state.models[model_id].ai_provider_id == provider.id  # the model followed
        return
    assert done.returncode == 1 and len(posts) == 1  # refused once, never a loop
    text = done.stdout + done.stderr
    assert "give the provider another metadata.name" in text and "1 model(s) point at the deleted provider" in text
    # the fix the message gives: a new name; the model moves to it in place
    renamed = (PROVIDER % ("openai-compat", ", base_url: 'https://llm.example/v1'")).replace(
        "name: openai}", "name: openai-v2}")
    (root / "provider.yaml").write_text(renamed)
    (root / "doc0.yaml").write_text((MODEL % "").replace("provider: openai", "provider: openai-v2"))
    done = apply(root, fake_coder, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    provider = next(p for p in fake_coder.state.providers.values() if not p.deleted)
    assert provider.name == "openai-v2" and fake_coder.state.models[model_id].ai_provider_id == provider.id


def test_a_provider_billed_its_own_price_is_never_in_sync(fake_coder: FakeCoder, tmp_path: Path) -> None:
    from tests.fakecoder.state import ModelPrice

    root = manifests(tmp_path / "m", MODEL % "")
    assert apply(root, fake_coder, tmp_path).returncode == 0
    code, body, _ = plan(root, fake_coder, tmp_path, "--detailed-exitcode")
    assert (code, body["changes"], body["unmanaged"]) == (0, [], [])
    provider = next(p for p in fake_coder.state.providers.values() if not p.deleted)
    prices = {"input_price": 2_000_000, "output_price": 12_000_000, "cache_read_price": None,
              "cache_write_price": None}
    fake_coder.state.custom_prices[("openai", provider.id, "gpt-5")] = ModelPrice(
        "openai", provider.id, "gpt-5", prices, "custom", "2026-09-01T00:00:00Z", "2026-09-01T00:00:00Z")
    code, body, _ = plan(root, fake_coder, tmp_path, "--detailed-exitcode")
    assert code == 2 and body["unmanaged"] == ["Price/openai/gpt-5 (provider openai)"]
    assert any("provider openai is billed its own price for gpt-5 (input $2, output $12 per 1M tokens), not the "
               "openai price (input $1.25, output $10, cache read $0.125 per 1M tokens)" in note
               for note in body["notes"])


def test_an_access_list_that_cannot_be_read_fails_the_plan(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = manifests(tmp_path / "m", MODEL % "  access: {groups: [Everyone]}\n")
    assert apply(root, fake_coder, tmp_path).returncode == 0
    model_id = next(iter(fake_coder.state.models))
    org_id = next(iter(fake_coder.state.organizations))
    acl = f"/api/v2/organizations/{org_id}/chats/models/{model_id}/acl"
    fake_coder.inject(500, times=20, method="GET", path_prefix=acl)
    done = run_cli("plan", str(root), env=env(fake_coder, tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot read" in done.stderr and "/acl" in done.stderr and "500" in done.stderr
