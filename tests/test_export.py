"""`reconciler export`: a store -> manifests whose plan against the same store is empty.

The round trips run against every store that has landed (`TARGETS`), through
the real CLI: apply -> export -> validate -> plan. The unit tests build a
`State` by hand to reach what manifests rarely produce (secrets without a
recorded reference, colliding model ids, dangling overrides).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from benchmarks.generate import generate
from reconciler.desired import desired_state
from reconciler.export import export_state, model_names, slug, write_export, write_files
from reconciler.plan import PlanOptions, compare
from reconciler.prices import default_price_book
from reconciler.secrets import ENCRYPTION_KEY_ENV, Secret
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, SETTINGS, SETTINGS_KEY, State
from reconciler.stores.base import Capabilities
from reconciler.validate import validate_paths
from tests.conftest import EXAMPLES, KEY_A, run_cli
from tests.fakecoder import FakeCoder
from tests.fakecoder.fixtures import DEFAULT_ORGANIZATION, DEFAULT_PRICE_BOOK
from tests.storefixtures import SqliteBackend, postgres_backend

# Every store the round trip runs against: the SQL stores, and the Coder store through the fake Coder
# (tests/fakecoder). The round-trip tests below assume nothing else about the store.
TARGETS = ["sqlite", "postgresql", "coder"]

EXAMPLE_SECRETS = {
    "ACME_ANTHROPIC_API_KEY": "sk-ant-example-primary-0001",
    "ACME_ANTHROPIC_API_KEY_SECONDARY": "sk-ant-example-secondary-02",
    "ACME_OPENAI_API_KEY": "sk-proj-example-primary-0003",
    "ACME_OPENAI_API_KEY_SECONDARY": "sk-proj-example-second-0004",
    "ACME_AZURE_OPENAI_API_KEY": "azure-example-key-000000005",
    "ACME_GEMINI_API_KEY": "gemini-example-key-00000006",
    "ACME_OPENROUTER_API_KEY": "sk-or-example-key-000000007",
    "ACME_VERCEL_AI_GATEWAY_API_KEY": "vercel-example-key-0000008",
}
FILE_SECRET = "litellm-virtual-key-0000009"


@dataclass(frozen=True)
class Target:
    url: str
    env: dict[str, str]  # what every command against the store needs (an encryption key, a token)


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    key = {ENCRYPTION_KEY_ENV: KEY_A}
    if request.param == "postgresql":
        for backend in postgres_backend():
            yield Target(backend.url, key)
        return
    if request.param == "coder":
        with FakeCoder() as coder:
            coder.add_organization(DEFAULT_ORGANIZATION, is_default=True)
            coder.seed_default_prices(DEFAULT_PRICE_BOOK)
            yield Target("coder+" + coder.url,
                         {"CODER_SESSION_TOKEN": coder.token, "XDG_CACHE_HOME": str(tmp_path / "cache")})
            assert coder.server_errors == []
        return
    yield Target(f"sqlite:///{tmp_path / 'state' / 'store.db'}", key)


def _examples(tmp_path: Path) -> Path:
    """A copy of examples/ whose file secret points at a file of the test's own."""
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy)
    key_file = tmp_path / "llm-internal-key"
    key_file.write_text(FILE_SECRET + "\n")
    provider = copy / "providers" / "llm-internal.yaml"
    provider.write_text(provider.read_text().replace("/run/secrets/acme-llm-internal-key", str(key_file)))
    return copy


def _plan(paths: str, target: Target, env: dict[str, str] | None = None) -> dict:
    result = run_cli("plan", paths, "--store", target.url, "--format", "json", "--detailed-exitcode",
                     env=target.env | (env or {}))
    assert result.returncode == 0, result.stdout + result.stderr  # 0 = no changes (2 would be changes)
    return json.loads(result.stdout)


def _round_trip(source: Path, target: Target, secrets: dict[str, str], out: Path) -> dict:
    """apply SOURCE, export to OUT, validate OUT; the plan of OUT, made without secret values."""
    applied = run_cli("apply", str(source), "--store", target.url, env=target.env | secrets)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    exported = run_cli("export", "--store", target.url, "--out", str(out), env=target.env)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == ""
    written = "".join(p.read_text() for p in out.rglob("*.yaml")) + exported.stderr
    for value in [*secrets.values(), FILE_SECRET]:
        assert value not in written
    validated = run_cli("validate", str(out))
    assert validated.returncode == 0, validated.stderr
    plan = _plan(str(out), target)
    assert plan["changes"] == [] and plan["unmanaged"] == []
    return plan


def _env_references(out: Path) -> set[str]:
    """Every `{env: NAME}` secret reference of the exported providers, as plans name them."""
    found = set()
    for path in (out / "providers").iterdir():
        spec = yaml.safe_load(path.read_text())["spec"]
        bedrock = (spec.get("settings") or {}).get("bedrock") or {}
        refs = [*spec.get("api_keys", []), *(bedrock.get(k) for k in ("access_key", "access_key_secret"))]
        found |= {f"env:{ref['env']}" for ref in refs if ref and "env" in ref}
    return found


def test_the_examples_round_trip(target: Target, tmp_path: Path):
    out = tmp_path / "exported"
    plan = _round_trip(_examples(tmp_path), target, EXAMPLE_SECRETS, out)
    assert set(plan["unverifiable_secrets"]) == _env_references(out)  # plan had no values at hand
    assert "All manifests are valid" in run_cli("validate", str(out)).stderr  # no warnings either
    # with the values at hand, the secrets exported under their own names are verified: still no change
    verified = _plan(str(out), target, EXAMPLE_SECRETS)
    assert verified["changes"] == []
    assert set(verified["unverifiable_secrets"]) == _env_references(out) - {f"env:{k}" for k in EXAMPLE_SECRETS}
    layout = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert layout == sorted([*(f"providers/{p.name}" for p in (EXAMPLES / "providers").iterdir()),
                             *(f"models/{p.name}" for p in (EXAMPLES / "models").iterdir()),
                             "prices/catalog.yaml", "overrides.yaml", "settings.yaml"])


def test_sql_stores_give_back_the_references_secrets_were_applied_from(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _round_trip(_examples(tmp_path), Target(url, {ENCRYPTION_KEY_ENV: KEY_A}), EXAMPLE_SECRETS, tmp_path / "out")
    assert _env_references(tmp_path / "out") == {f"env:{k}" for k in EXAMPLE_SECRETS}
    internal = yaml.safe_load((tmp_path / "out" / "providers" / "llm-internal.yaml").read_text())
    assert internal["spec"]["api_keys"] == [{"file": str(tmp_path / "llm-internal-key")}]


def test_a_large_generated_set_round_trips(target: Target, tmp_path: Path):
    source = tmp_path / "generated"
    generate(str(source), providers=50, models=1000)
    secrets = {f"PROVIDER_{i:04d}_KEY_{s}": f"generated-key-{i:04d}-{s}" for i in range(50) for s in "AB"}
    out = tmp_path / "exported"
    _round_trip(source, target, secrets, out)
    assert len(list((out / "providers").iterdir())) == 50
    models = [d for p in (out / "models").iterdir() for d in yaml.safe_load_all(p.read_text())]
    assert len(models) == 1000
    assert all("enabled" not in m["spec"] and "compression_threshold" not in m["spec"] for m in models)


def test_secrets_without_a_recorded_reference_get_derived_names(tmp_path: Path):
    backend = SqliteBackend(tmp_path / "store.db")
    try:
        key = {ENCRYPTION_KEY_ENV: KEY_A}
        applied = run_cli("apply", str(_examples(tmp_path)), "--store", backend.url, env=key | EXAMPLE_SECRETS)
        assert applied.returncode == 0, applied.stderr
        backend.query("UPDATE secrets SET ref = NULL")  # as a store that keeps no references reads
        out = tmp_path / "exported"
        exported = run_cli("export", "--store", backend.url, "--out", str(out), env=key)
        assert exported.returncode == 0, exported.stderr
        provider = (out / "providers" / "anthropic.yaml").read_text()
        assert yaml.safe_load(provider)["spec"]["api_keys"] == [
            {"env": "RECONCILER_ANTHROPIC_API_KEY_1"}, {"env": "RECONCILER_ANTHROPIC_API_KEY_2"}]
        assert "#   RECONCILER_ANTHROPIC_API_KEY_2  (api_keys[2])" in provider
        assert "RECONCILER_LLM_INTERNAL_API_KEY_1  (provider llm-internal, api_keys[1])" in exported.stderr

        derived = {
            "RECONCILER_ANTHROPIC_API_KEY_1": EXAMPLE_SECRETS["ACME_ANTHROPIC_API_KEY"],
            "RECONCILER_ANTHROPIC_API_KEY_2": EXAMPLE_SECRETS["ACME_ANTHROPIC_API_KEY_SECONDARY"],
        }
        store = Target(backend.url, key)
        unverified = _plan(str(out), store)
        assert "env:RECONCILER_ANTHROPIC_API_KEY_1" in unverified["unverifiable_secrets"]
        verified = _plan(str(out), store, derived)
        assert "env:RECONCILER_ANTHROPIC_API_KEY_1" not in verified["unverifiable_secrets"]
        # the names are checked, not waved through: a wrong value is a change
        wrong = run_cli("plan", str(out), "--store", backend.url, "--format", "json", "--detailed-exitcode",
                        env=key | derived | {"RECONCILER_ANTHROPIC_API_KEY_2": "sk-ant-not-the-stored-one"})
        assert wrong.returncode == 2
        (change,) = json.loads(wrong.stdout)["changes"]
        assert change["key"] == "anthropic" and change["diff"][0]["sensitive"] is True
    finally:
        backend.close_all()


def test_export_refuses_a_directory_that_is_not_empty_and_streams_to_stdout(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    key = {ENCRYPTION_KEY_ENV: KEY_A}
    assert run_cli("apply", str(_examples(tmp_path)), "--store", url, env=key | EXAMPLE_SECRETS).returncode == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    refused = run_cli("export", "--store", url, "--out", str(busy), env=key)
    assert refused.returncode == 1 and "is not empty" in refused.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    streamed = run_cli("export", "--store", url, env=key)
    assert streamed.returncode == 0, streamed.stderr
    stream = tmp_path / "all.yaml"
    stream.write_text(streamed.stdout)
    assert streamed.stdout.startswith("# yaml-language-server: $schema=https://reconciler.dev/schemas/v1/manifest")
    assert run_cli("validate", str(stream)).returncode == 0
    assert _plan(str(stream), Target(url, key))["changes"] == []


# --- unit: a State built by hand ---------------------------------------------------------------


def _state() -> State:
    state = State(default_prices=default_price_book())
    bedrock_settings = {"bedrock": {"region": "eu-west-1", "model": "eu.anthropic.claude-sonnet-4-5",
                                    "small_fast_model": "eu.anthropic.claude-haiku-4-5", "protocol": "invoke-model",
                                    "access_key": Secret(view="hmac-sha256:aaaa"),
                                    "access_key_secret": Secret(view="hmac-sha256:bbbb")}}
    state.of(PROVIDER).update({
        ("openai",): {"type": "openai", "display_name": "openai", "icon": "", "enabled": True,
                      "base_url": "https://api.openai.com/v1",
                      "api_keys": [Secret("env:OPENAI_KEY", "hmac-sha256:1111"), Secret(view="hmac-sha256:2222")],
                      "settings": None},
        ("azure-eu",): {"type": "azure", "display_name": "Azure EU", "icon": "/icon/azure.svg", "enabled": False,
                        "base_url": "https://acme-eu.openai.azure.com/openai/v1",
                        "api_keys": [Secret("file:/run/secrets/azure", "hmac-sha256:3333")],
                        "settings": {"upstream_headers": {"X-Team": "platform", "X-Chat": "{{chat_id}}"}}},
        ("aws",): {"type": "bedrock", "display_name": "aws", "icon": "", "enabled": True,
                   "base_url": "https://bedrock-runtime.eu-west-1.amazonaws.com", "api_keys": [],
                   "settings": bedrock_settings},
    })
    state.meta[(PROVIDER, ("openai",))] = {"labels": {"team": "platform"},
                                           "annotations": {"reconciler/protect": "true"}}
    model = {"display_name": "gpt-5", "enabled": True, "default": True, "context_limit": 400_000,
             "compression_threshold": 70, "config": {"reasoning_effort": {"max": "high", "default": "medium"},
                                                     "max_output_tokens": 128_000}}
    state.of(MODEL).update({
        ("default", "openai", "gpt-5"): model,
        ("research", "openai", "gpt-5"): dict(model, compression_threshold=50),
        ("default", "azure-eu", "gpt-5"): dict(model, display_name="GPT-5 (EU)", default=False,
                                                context_limit=600_000, config={}),
        ("default", "aws", "eu.anthropic.claude-sonnet-4-5"): dict(
            model, display_name="Claude\nSonnet", default=False, context_limit=200_000, config={}),
    })
    state.meta[(MODEL, ("default", "azure-eu", "gpt-5"))] = {"labels": {"region": "eu"}, "annotations": {}}
    state.of(PRICE).update({
        ("openai", "gpt-4o"): dict(default_price_book()[("openai", "gpt-4o")]),  # = the book: left out
        ("azure", "gpt-5"): {"input": 1_300_000, "output": 10_000_000, "cache_read": None, "cache_write": None},
        ("anthropic", "claude-x"): {"input": 1, "output": 2, "cache_read": 0, "cache_write": None},
        ("bedrock", "eu.anthropic.claude-sonnet-4-5"): {"input": 3_000_000, "output": 15_000_000,
                                                        "cache_read": 300_000, "cache_write": 3_750_000},
    })
    state.meta[(PRICE, ("azure", "gpt-5"))] = {"labels": {"region": "eu"}, "annotations": {}}  # its model's
    state.meta[(PRICE, ("anthropic", "claude-x"))] = {"labels": {"team": "finops"}, "annotations": {}}
    state.of(OVERRIDE).update({
        ("default", "general"): {"provider": "openai", "model": "gpt-5", "reasoning_effort": "high"},
        ("default", "explore"): {"provider": "aws", "model": "eu.anthropic.claude-sonnet-4-5",
                                 "reasoning_effort": None},
        ("default", "advisor"): {"provider": "openai", "model": "o3", "reasoning_effort": None},
        ("research", "general"): {"provider": "openai", "model": "gpt-5", "reasoning_effort": None},
    })
    state.of(SETTINGS)[SETTINGS_KEY] = {"allow_users": False}
    return state


def _docs(export, path: str) -> list[dict]:
    (found,) = [f for f in export.files if f.path == path]
    return list(yaml.safe_load_all(found.body()))


def test_defaults_are_left_out_and_everything_else_is_kept():
    export = export_state(_state())
    (openai,) = _docs(export, "providers/openai.yaml")
    assert list(openai) == ["apiVersion", "kind", "metadata", "spec"]
    assert openai["metadata"] == {"name": "openai", "labels": {"team": "platform"},
                                  "annotations": {"reconciler/protect": "true"}}
    assert openai["spec"] == {"type": "openai",
                              "api_keys": [{"env": "OPENAI_KEY"}, {"env": "RECONCILER_OPENAI_API_KEY_2"}]}
    (azure,) = _docs(export, "providers/azure-eu.yaml")
    assert list(azure["spec"]) == ["type", "display_name", "icon", "enabled", "base_url", "api_keys", "settings"]
    assert azure["spec"]["enabled"] is False and azure["spec"]["api_keys"] == [{"file": "/run/secrets/azure"}]
    (aws,) = _docs(export, "providers/aws.yaml")
    assert "base_url" not in aws["spec"]  # derived from the region
    assert aws["spec"]["settings"]["bedrock"] == {
        "region": "eu-west-1", "model": "eu.anthropic.claude-sonnet-4-5",
        "small_fast_model": "eu.anthropic.claude-haiku-4-5",
        "access_key": {"env": "RECONCILER_AWS_BEDROCK_ACCESS_KEY"},
        "access_key_secret": {"env": "RECONCILER_AWS_BEDROCK_ACCESS_KEY_SECRET"}}
    assert [d.env for d in export.derived] == [
        "RECONCILER_AWS_BEDROCK_ACCESS_KEY", "RECONCILER_AWS_BEDROCK_ACCESS_KEY_SECRET", "RECONCILER_OPENAI_API_KEY_2"]
    specs = {d["metadata"]["name"]: d["spec"] for d in _docs(export, "models/openai.yaml")}
    assert specs["default-openai-gpt-5"] == {
        "provider": "openai", "model": "gpt-5", "default": True, "context_limit": 400_000,
        "config": {"max_output_tokens": 128_000, "reasoning_effort": {"default": "medium", "max": "high"}}}
    assert specs["research-openai-gpt-5"]["organization"] == "research"
    assert specs["research-openai-gpt-5"]["compression_threshold"] == 50
    (eu,) = _docs(export, "models/azure-eu.yaml")
    assert eu["spec"]["compression_threshold"] == 70  # the default for 600k tokens is 30
    assert eu["spec"]["display_name"] == "GPT-5 (EU)"
    (claude,) = _docs(export, "models/aws.yaml")
    assert claude["spec"]["display_name"] == "Claude\nSonnet"
    text = "".join(f.body() for f in export.files)
    assert "hmac-sha256" not in text  # a store's view of a secret is never written either


def test_prices_overrides_and_settings():
    export = export_state(_state())
    catalogs = _docs(export, "prices/catalog.yaml")
    entries = {(c["metadata"]["name"], e["provider"], e["model"]): e for c in catalogs for e in c["spec"]["prices"]}
    assert set(entries) == {("prices", "azure", "gpt-5"), ("prices", "bedrock", "eu.anthropic.claude-sonnet-4-5"),
                            ("prices-2", "anthropic", "claude-x")}
    assert entries[("prices", "azure", "gpt-5")] == {"provider": "azure", "model": "gpt-5", "input": "1.3",
                                                     "output": "10", "cache_read": None, "cache_write": None}
    assert entries[("prices-2", "anthropic", "claude-x")]["input"] == "0.000001"
    assert catalogs[1]["metadata"]["labels"] == {"team": "finops"}
    assert export.counts["prices equal to the default price book, left out"] == 1
    overrides = _docs(export, "overrides.yaml")
    assert [o["metadata"]["name"] for o in overrides] == ["default", "research"]
    assert overrides[0]["spec"] == {"contexts": {
        "general": {"model": "default-openai-gpt-5", "reasoning_effort": "high"},
        "explore": {"model": "eu.anthropic.claude-sonnet-4-5"}}}
    assert overrides[1]["spec"] == {"organization": "research",
                                    "contexts": {"general": {"model": "research-openai-gpt-5"}}}
    assert export.notes == ["override default/advisor names model openai/o3, which the store does not hold: "
                            "left out"]
    (settings,) = _docs(export, "settings.yaml")
    assert settings["spec"] == {"personal_model_overrides": {"allow_users": False}}


def test_the_hand_built_state_round_trips_through_validate_and_plan(tmp_path: Path):
    state = _state()
    export = export_state(state)
    write_export(export, str(tmp_path / "out"))
    validation = validate_paths([str(tmp_path / "out")])
    # inherent to the data: a model on a disabled provider (azure-eu)
    assert sorted({d.code for d in validation.diagnostics}) == ["RC423"]
    assert all(d.severity == "warning" for d in validation.diagnostics)
    desired = desired_state(validation.manifests, state, lambda ref, group: None)
    caps = Capabilities(transactional=True, secret_view="fingerprint", keeps_metadata=True)
    plan = compare(desired, state, caps, PlanOptions())
    assert [c.id for c in plan.changes] == []
    # what a manifest leaves out: the override of a model the store lacks, and the price equal to the book
    assert sorted(plan.unmanaged) == ["Override/default/advisor", "Price/openai/gpt-4o"]


def test_export_is_deterministic_and_modelines_point_at_the_schemas_written(tmp_path: Path):
    first, second = export_state(_state()), export_state(_state())
    assert [(f.path, f.body()) for f in first.files] == [(f.path, f.body()) for f in second.files]
    write_files(first.files, str(tmp_path))
    for path in tmp_path.rglob("*.yaml"):
        modeline = path.read_text().splitlines()[0]
        schema = modeline.removeprefix("# yaml-language-server: $schema=")
        assert (path.parent / schema).is_file(), path


def test_model_names_are_slugs_of_the_model_id_made_unique():
    assert slug("Qwen/Qwen3-Coder-30B-A3B-Instruct") == "qwen-qwen3-coder-30b-a3b-instruct"
    bedrock_id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert slug(bedrock_id) == "global.anthropic.claude-sonnet-4-5-20250929-v1-0"
    assert slug("???") == "model"
    assert len(slug("x" * 400)) == 253
    names = model_names([("default", "a", "m"), ("default", "b", "m"), ("default", "c", "a-m"),
                         ("other", "c", "a-m"), ("default", "d", "solo")])
    assert names == {("default", "a", "m"): "a-m", ("default", "b", "m"): "b-m",
                     ("default", "c", "a-m"): "default-c-a-m", ("other", "c", "a-m"): "other-c-a-m",
                     ("default", "d", "solo"): "solo"}
    clash = model_names([("default", "a", "m"), ("default", "b", "m"), ("default", "z", "a-m")])
    assert sorted(clash.values()) == ["a-m", "a-m-2", "b-m"]
