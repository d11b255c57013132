"""`--select` owns a slice of the gateway: it scopes the sync and the deletes by the labels stored with
each object, on every store; a store that keeps no labels (Coder) refuses `--select --prune`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import storefixtures
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder, fixtures
from tests.storefixtures import ENV, Backend

backend = storefixtures.backend
fake_coder = fixtures.fake_coder


def provider(name: str, labels: dict[str, str]) -> str:
    return (f"apiVersion: reconciler/v1\nkind: Provider\nmetadata: {{name: {name}, labels: {json.dumps(labels)}}}\n"
            f"spec: {{type: openai-compat, base_url: 'https://{name}.example.com/v1'}}\n")


def write(root: Path, providers: dict[str, dict[str, str]]) -> Path:
    root.mkdir(exist_ok=True)
    for old in root.glob("*.yaml"):
        old.unlink()
    for name, labels in providers.items():
        (root / f"{name}.yaml").write_text(provider(name, labels))
    return root


SLICES = {"plat-a": {"team": "platform"}, "plat-b": {"team": "platform", "tier": "x"}, "data-a": {"team": "data"}}


def plan_json(url: str, root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    done = run_cli("plan", str(root), "--store", url, "--format", "json", *args, env=env or ENV)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def ids(plan: dict[str, Any], action: str) -> list[str]:
    return [f"{c['kind']}/{c['key']}" for c in plan["changes"] if c["action"] == action]


def test_select_and_prune_delete_exactly_the_selections_orphans(backend: Backend, tmp_path: Path) -> None:
    root = write(tmp_path / "m", SLICES)
    assert run_cli("apply", str(root), "--store", backend.url, env=ENV).returncode == 0
    # the platform team removes plat-b; data-a's manifest lives in another team's repository
    write(root, {"plat-a": SLICES["plat-a"]})
    code, plan = plan_json(backend.url, root, "--select", "team=platform", "--prune", "--detailed-exitcode")
    assert code == 2 and ids(plan, "delete") == ["Provider/plat-b"]
    assert plan["not_selected"] == ["Provider/data-a"] and plan["unmanaged"] == []
    # without --prune, the orphan is unmanaged (drift); the other team's object is not
    code, plan = plan_json(backend.url, root, "--select", "team=platform", "--detailed-exitcode")
    assert code == 2 and plan["changes"] == [] and plan["unmanaged"] == ["Provider/plat-b"]
    assert plan["not_selected"] == ["Provider/data-a"]
    text = run_cli("plan", str(root), "--store", backend.url, "--select", "team=platform", env=ENV).stdout
    assert "1 object in the store is not in the manifests" in text and "not selected by --select team=platform" in text
    done = run_cli("apply", str(root), "--store", backend.url, "--select", "team = platform", "--prune", env=ENV)
    assert done.returncode == 0, done.stderr
    code, plan = plan_json(backend.url, root, "--select", "team=platform", "--detailed-exitcode")
    assert code == 0 and plan["not_selected"] == ["Provider/data-a"] and plan["unmanaged"] == []
    shown = run_cli("plan", str(root), "--store", backend.url, "--select", "team=platform", env=ENV).stdout
    assert "The selected objects in the store match the manifests." in shown and "The store matches" not in shown
    # the whole store: data-a is unmanaged again, and it is still there
    code, plan = plan_json(backend.url, root, "--detailed-exitcode")
    assert code == 2 and plan["unmanaged"] == ["Provider/data-a"]


def test_an_object_moving_to_another_owner_is_not_pruned(backend: Backend, tmp_path: Path) -> None:
    root = write(tmp_path / "m", SLICES)
    assert run_cli("apply", str(root), "--store", backend.url, env=ENV).returncode == 0
    write(root, {**SLICES, "plat-b": {"team": "data"}})  # relabelled: the data team takes plat-b over
    code, plan = plan_json(backend.url, root, "--select", "team=platform", "--prune")
    assert code == 0 and ids(plan, "delete") == []
    assert sorted(plan["not_selected"]) == ["Provider/data-a", "Provider/plat-b"]


@pytest.mark.parametrize(("selector", "deleted"), [
    ("team=platform,tier=x", []),  # plat-b's manifest is kept: nothing to delete
    ("team==platform", ["Provider/plat-a"]),
    ("team!=data", ["Provider/plat-a"]),
    ("team in (platform, data)", ["Provider/data-a", "Provider/plat-a"]),
    ("team notin (data)", ["Provider/plat-a"]),
    ("tier", []),
    ("!tier", ["Provider/data-a", "Provider/plat-a"]),
])
def test_every_selector_form_scopes_the_deletes(backend: Backend, tmp_path: Path, selector: str,
                                                deleted: list[str]) -> None:
    root = write(tmp_path / "m", SLICES)
    assert run_cli("apply", str(root), "--store", backend.url, env=ENV).returncode == 0
    write(root, {"plat-b": SLICES["plat-b"]})  # only plat-b is still named
    code, plan = plan_json(backend.url, root, "--select", selector, "--prune")
    assert code == 0, plan
    assert sorted(ids(plan, "delete")) == deleted
    everything = {"Provider/plat-a", "Provider/plat-b", "Provider/data-a"}
    selected_manifests = {"Provider/plat-b"} - set(plan["not_selected"])
    assert set(plan["not_selected"]) == everything - set(deleted) - selected_manifests


@pytest.mark.parametrize(("selector", "where"), [
    ("", "empty selector"), ("team=", "expected a value at the end"), ("=x", "expected a label key"),
    ("team in (a", "expected ')' at the end"), ("team in ()", "expected a value"), ("team=a,", "at the end"),
    ("team notin a", "expected '('"), ("a b", "found 'b'"), ("!", "a label key after '!'"),
])
def test_malformed_selectors_are_usage_errors(tmp_path: Path, selector: str, where: str) -> None:
    root = write(tmp_path / "m", SLICES)
    db = tmp_path / "store.db"
    done = run_cli("plan", str(root), "--store", f"sqlite:///{db}", "--select", selector, env=ENV)
    assert done.returncode == 1 and "--select" in done.stderr and where in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not db.exists()


def test_a_selector_matching_no_manifest_is_a_warning(tmp_path: Path) -> None:
    root = write(tmp_path / "m", SLICES)
    done = run_cli("plan", str(root), "--store", f"sqlite:///{tmp_path / 's.db'}", "--select", "team=nobody", env=ENV)
    assert done.returncode == 0 and "Warning: --select team=nobody matches no manifest" in done.stdout


def test_selectors_from_the_environment_are_separated_by_semicolons(backend: Backend, tmp_path: Path) -> None:
    root = write(tmp_path / "m", SLICES)
    env = {**ENV, "RECONCILER_SELECT": "team in (platform, data);tier"}
    done = run_cli("plan", str(root), "--store", backend.url, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert [c["key"] for c in json.loads(done.stdout)["changes"]] == ["plat-b"]


def test_a_store_without_labels_refuses_select_with_prune(fake_coder: FakeCoder, tmp_path: Path) -> None:
    root = write(tmp_path / "m", SLICES)
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    url = "coder+" + fake_coder.url
    assert run_cli("apply", str(root), "--store", url, env=env).returncode == 0
    write(root, {"plat-a": SLICES["plat-a"]})
    fake_coder.reset_requests()
    refused = run_cli("apply", str(root), "--store", url, "--select", "team=platform", "--prune", env=env)
    assert refused.returncode == 1 and "this store keeps no labels" in refused.stdout + refused.stderr
    # nothing written (the authcheck is a POST that writes nothing)
    assert {r.method for r in fake_coder.requests if r.path != "/api/v2/authcheck"} <= {"GET"}
    code, plan = plan_json(url, root, "--select", "team=platform", env=env)
    assert code == 0 and plan["unmanaged"] == []
    assert sorted(plan["not_selected"]) == ["Provider/data-a", "Provider/plat-b"]
    # the whole store can still be pruned: every object's owner is then the manifests
    code, plan = plan_json(url, root, "--prune", env=env)
    assert code == 0 and sorted(ids(plan, "delete")) == ["Provider/data-a", "Provider/plat-b"]
