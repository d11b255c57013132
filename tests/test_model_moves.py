"""A Model moved to another provider, or to another model id with `reconciler/moved-from`, is
updated in place on every store: it keeps its identity (Coder's ID, so its access list and chats),
the overrides that name it and its default flag; an ambiguous move is said and not guessed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import storefixtures
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.storefixtures import ENV, Backend, SqliteBackend

PROVIDERS = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: anthropic}
spec: {type: anthropic, api_keys: [{env: KEY_A}]}
---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: anthropic-eu}
spec: {type: anthropic, base_url: "https://eu.anthropic.example", api_keys: [{env: KEY_B}]}
"""
MODEL = """apiVersion: reconciler/v1
kind: Model
metadata:
  name: claude-sonnet
  annotations: {%s}
spec:
  provider: %s
  model: %s
  default: true
  context_limit: 200000
  pricing: {input: 3, output: 15}
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: claude-haiku}
spec: {provider: anthropic, model: claude-haiku-4-5, context_limit: 200000, pricing: {input: 1, output: 5}}
"""
OVERRIDES = """apiVersion: reconciler/v1
kind: Overrides
metadata: {name: contexts}
spec:
  contexts:
    general: {model: claude-sonnet}
    explore: {model: claude-haiku}
"""
KEYS = {"KEY_A": "sk-ant-key-a-0123456789abcdef", "KEY_B": "sk-ant-key-b-0123456789abcdef"}


@dataclass
class Target:
    """A store the CLI runs against, and a way to read what it holds from outside the process."""

    url: str
    env: dict[str, str]
    models: Any  # () -> {(provider, model): (identity, is_default)}
    overrides: Any  # () -> {context: (provider, model)}


@pytest.fixture(params=["sqlite", "postgresql", "coder"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "coder":
        with FakeCoder() as coder:
            org_id = coder.add_organization("coder", is_default=True)
            from tests.fakecoder.people import add_group, add_user

            add_group(coder.state, org_id, "ml-platform", [add_user(coder.state, "alice").id])
            coder.seed_default_prices(fixtures.DEFAULT_PRICE_BOOK)
            env = {"CODER_SESSION_TOKEN": coder.token, **KEYS}

            def names() -> dict[str, str]:
                return {p.id: p.name for p in coder.state.providers.values() if not p.deleted}

            def models() -> dict[tuple[str, str], tuple[str, bool]]:
                return {(names()[m.ai_provider_id], m.model): (m.id, m.is_default)
                        for m in coder.state.models.values()}

            def overrides() -> dict[str, tuple[str, str]]:
                by_id = {m.id: (names()[m.ai_provider_id], m.model) for m in coder.state.models.values()}
                return {context: by_id[o.model_config_id] for (_, context), o in coder.state.overrides.items()
                        if o.model_config_id}

            yield Target("coder+" + coder.url, env, models, overrides)
        return
    if request.param == "postgresql":
        backends: Iterator[Backend] = storefixtures.postgres_backend()
    else:
        backends = iter([SqliteBackend(tmp_path / "store.db")])
    backend = next(backends)

    def models_sql() -> dict[tuple[str, str], tuple[str, bool]]:
        # a SQL row has no identity beyond its key: the plans above say it was updated, not re-created
        return {(r[0], r[1]): ("row", bool(r[2])) for r in backend.query(
            "SELECT provider, model, is_default FROM models")}

    def overrides_sql() -> dict[str, tuple[str, str]]:
        return {r[0]: (r[1], r[2]) for r in backend.query("SELECT context, provider, model FROM overrides")}

    yield Target(backend.url, {**ENV, **KEYS}, models_sql, overrides_sql)
    backend.close_all()
    for _ in backends:  # the PostgreSQL schema is dropped
        pass


def write(root: Path, provider: str, model: str = "claude-sonnet-4-5", annotations: str = "",
          providers: str = PROVIDERS) -> Path:
    root.mkdir(exist_ok=True)
    (root / "providers.yaml").write_text(providers)
    (root / "models.yaml").write_text(MODEL % (annotations, provider, model))
    (root / "overrides.yaml").write_text(OVERRIDES)
    return root


def plan_json(root: Path, target: Target, *args: str) -> dict[str, Any]:
    done = run_cli("plan", str(root), "--store", target.url, "--format", "json", *args, env=target.env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def apply(root: Path, target: Target, *args: str) -> str:
    done = run_cli("apply", str(root), "--store", target.url, *args, env=target.env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_moving_a_model_to_another_provider_keeps_it(target: Target, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "anthropic")
    apply(root, target)
    before = target.models()
    identity, is_default = before[("anthropic", "claude-sonnet-4-5")]
    assert is_default and target.overrides()["general"] == ("anthropic", "claude-sonnet-4-5")

    write(root, "anthropic-eu")
    plan = plan_json(root, target)
    assert [(c["action"], c["key"], c.get("moved_from")) for c in plan["changes"]] == [
        ("update", "default/anthropic-eu/claude-sonnet-4-5" if not target.url.startswith("coder") else
         "coder/anthropic-eu/claude-sonnet-4-5",
         "default/anthropic/claude-sonnet-4-5" if not target.url.startswith("coder") else
         "coder/anthropic/claude-sonnet-4-5")]
    assert plan["changes"][0]["diff"] == [{"path": "provider", "before": "anthropic", "after": "anthropic-eu"}]
    text = run_cli("plan", str(root), "--store", target.url, env=target.env).stdout
    assert "moved from" in text and 'provider: "anthropic" -> "anthropic-eu"' in text

    apply(root, target)
    after = target.models()
    assert ("anthropic", "claude-sonnet-4-5") not in after
    assert after[("anthropic-eu", "claude-sonnet-4-5")] == (identity, True)  # same identity, still default
    assert target.overrides() == {"general": ("anthropic-eu", "claude-sonnet-4-5"),
                                  "explore": ("anthropic", "claude-haiku-4-5")}
    assert plan_json(root, target, "--detailed-exitcode")["changes"] == []


def test_a_version_bump_moves_only_when_annotated(target: Target, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "anthropic")
    apply(root, target)
    identity = target.models()[("anthropic", "claude-sonnet-4-5")][0]

    # without the annotation a new model id is a new model: created, and the override follows the name
    write(root, "anthropic", "claude-sonnet-4-6")
    plan = plan_json(root, target)
    assert {(c["action"], c["kind"]) for c in plan["changes"]} >= {("create", "Model")}
    assert not any(c.get("moved_from") for c in plan["changes"])

    write(root, "anthropic", "claude-sonnet-4-6", '"reconciler/moved-from": anthropic/claude-sonnet-4-5')
    plan = plan_json(root, target)
    moved = [c for c in plan["changes"] if c.get("moved_from")]
    assert len(moved) == 1 and moved[0]["diff"][0] == {
        "path": "model", "before": "claude-sonnet-4-5", "after": "claude-sonnet-4-6"}
    assert not any(c["kind"] == "Override" for c in plan["changes"])  # it follows the model
    apply(root, target)
    assert target.models()[("anthropic", "claude-sonnet-4-6")] == (identity, True)
    assert target.overrides()["general"] == ("anthropic", "claude-sonnet-4-6")
    assert plan_json(root, target)["changes"] == []


def test_an_ambiguous_move_is_said_and_not_guessed(target: Target, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "anthropic")
    (root / "extra.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: eu-sonnet}\n"
        "spec: {provider: anthropic-eu, model: claude-sonnet-4-5, context_limit: 200000}\n")
    apply(root, target)
    (root / "extra.yaml").unlink()
    three = PROVIDERS + """---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: anthropic-us}
spec: {type: anthropic, base_url: "https://us.anthropic.example", api_keys: [{env: KEY_A}]}
"""
    write(root, "anthropic-us", providers=three)
    plan = plan_json(root, target)
    assert not any(c.get("moved_from") for c in plan["changes"])
    assert any("not guessed" in note and "reconciler/moved-from" in note for note in plan["notes"])

    # the annotation settles it
    write(root, "anthropic-us", annotations='"reconciler/moved-from": anthropic-eu/claude-sonnet-4-5',
          providers=three)
    plan = plan_json(root, target)
    moved = [c for c in plan["changes"] if c.get("moved_from")]
    assert [c["moved_from"].split("/", 1)[1] for c in moved] == ["anthropic-eu/claude-sonnet-4-5"]


def test_a_stale_annotation_names_nothing_and_creates(target: Target, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "anthropic", annotations='"reconciler/moved-from": nowhere/claude-x')
    plan = plan_json(root, target)
    assert all(c["action"] == "create" for c in plan["changes"])
    assert any("names no model" in note for note in plan["notes"])


def test_moves_only_explicit_under_select(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "store.db")
    env = {**ENV, **KEYS}
    root = write(tmp_path / "m", "anthropic")
    assert run_cli("apply", str(root), "--store", backend.url, env=env).returncode == 0
    text = (root / "models.yaml").read_text()
    text = text.replace("name: claude-sonnet\n", "name: claude-sonnet\n  labels: {team: a}\n")
    (root / "models.yaml").write_text(text.replace("provider: anthropic\n", "provider: anthropic-eu\n", 1))
    done = run_cli("plan", str(root), "--store", backend.url, "--select", "team=a", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert not any(c.get("moved_from") for c in json.loads(done.stdout)["changes"])


def test_a_saved_plan_carries_the_move(target: Target, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "anthropic")
    apply(root, target)
    identity = target.models()[("anthropic", "claude-sonnet-4-5")][0]
    write(root, "anthropic-eu")
    env = {**target.env, "RECONCILER_PLAN_KEY": "plan-key-0123456789abcdef0123456789"}
    saved = tmp_path / "plan.json"
    done = run_cli("plan", str(root), "--store", target.url, "--out", str(saved), env=env)
    assert done.returncode == 0, done.stderr
    shown = run_cli("show", str(saved), env=env)
    assert "moved from" in shown.stdout, shown.stdout + shown.stderr
    done = run_cli("apply", str(saved), "--store", target.url, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.models()[("anthropic-eu", "claude-sonnet-4-5")][0] == identity
    assert target.overrides()["general"] == ("anthropic-eu", "claude-sonnet-4-5")


def test_access_lists_round_trip_and_follow_a_move(target: Target, tmp_path: Path) -> None:
    access = '  access: {groups: [ml-platform], users: [alice]}\n'
    root = write(tmp_path / "m", "anthropic")
    (root / "models.yaml").write_text((root / "models.yaml").read_text().replace(
        "  pricing: {input: 3, output: 15}\n", "  pricing: {input: 3, output: 15}\n" + access, 1))
    apply(root, target)
    assert plan_json(root, target, "--detailed-exitcode")["changes"] == []
    # a move keeps the access list: nothing to write to it
    (root / "models.yaml").write_text((root / "models.yaml").read_text().replace(
        "provider: anthropic\n", "provider: anthropic-eu\n", 1))
    plan = plan_json(root, target)
    assert [(c.get("moved_from", "").split("/", 1)[-1], [d["path"] for d in c["diff"]]) for c in plan["changes"]] \
        == [("anthropic/claude-sonnet-4-5", ["provider"])]
    apply(root, target)
    assert plan_json(root, target, "--detailed-exitcode")["changes"] == []
    exported = run_cli("export", "--store", target.url, "--out", str(tmp_path / "export"), env=target.env)
    assert exported.returncode == 0, exported.stderr
    text = (tmp_path / "export" / "models" / "anthropic-eu.yaml").read_text()
    assert "access:\n    groups:\n      - ml-platform\n    users:\n      - alice\n" in text
    done = run_cli("plan", str(tmp_path / "export"), "--store", target.url, "--detailed-exitcode", env=target.env)
    assert done.returncode == 0, done.stdout + done.stderr
