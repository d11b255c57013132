"""The drift alarm tells the truth about objects no manifest names; saved plans are rendered by
`show` exactly as `plan` printed them; options that shape a plan are refused with a saved plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import storefixtures
from tests.cliharness import Manifests, example_manifests, history
from tests.conftest import run_cli
from tests.storefixtures import Backend

backend = storefixtures.backend


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    return example_manifests(tmp_path)


def run(backend: Backend, manifests: Manifests, *args: str) -> Any:
    return run_cli(*args, "--store", backend.url, env=manifests.env)


def test_an_object_no_manifest_names_is_drift(backend: Backend, manifests: Manifests) -> None:
    extra = manifests.path / "providers" / "added-in-the-ui.yaml"
    extra.write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: added-in-the-ui}\n"
                     "spec: {type: openai-compat, base_url: 'https://llm.example.com/v1'}\n")
    assert run(backend, manifests, "apply", str(manifests.path)).returncode == 0
    extra.unlink()  # as if someone had added it by hand: an object no manifest names
    quiet = run(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode", "--ignore-unmanaged")
    assert quiet.returncode == 0
    drift = run(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode")
    assert drift.returncode == 2
    assert "1 object in the store is not in the manifests" in drift.stdout and "matches" not in drift.stdout
    markdown = run(backend, manifests, "plan", str(manifests.path), "--format", "markdown")
    assert "1 object in the store is not in the manifests" in markdown.stdout
    extra.write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: added-in-the-ui}\n"
                     "spec: {type: openai-compat, base_url: 'https://llm.example.com/v1'}\n")
    settled = run(backend, manifests, "plan", str(manifests.path), "--detailed-exitcode")
    assert settled.returncode == 0 and "The store matches the manifests." in settled.stdout


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_show_renders_a_saved_plan_as_plan_printed_it(backend: Backend, manifests: Manifests, tmp_path: Path,
                                                      fmt: str) -> None:
    path = tmp_path / "p.plan"
    (manifests.path / "empty.yaml").write_text("# nothing yet\n")  # a validation warning (RC114)
    planned = run(backend, manifests, "plan", str(manifests.path), "--format", fmt, "--out", str(path))
    assert planned.returncode == 0
    shown = run_cli("show", str(path), "--format", fmt, env=manifests.env)
    assert shown.returncode == 0, shown.stderr
    expected = planned.stdout
    if fmt == "text":
        expected = expected.split(f"\nSaved the plan to {path}")[0]
    if fmt == "markdown":  # validation warnings are kept in the saved plan
        assert "**Validation warnings:**" in expected and "RC114" in expected
    assert shown.stdout == expected
    assert "signature: verified" in shown.stderr
    unsigned = run_cli("show", str(path), env={})
    assert unsigned.returncode == 0 and "not checked (no key set here)" in unsigned.stderr


def test_plan_given_a_plan_file_points_at_show(backend: Backend, manifests: Manifests, tmp_path: Path) -> None:
    path = tmp_path / "p.plan"
    assert run(backend, manifests, "plan", str(manifests.path), "--out", str(path)).returncode == 0
    done = run(backend, manifests, "plan", str(path))
    assert done.returncode == 1 and f"reconciler show {path}" in done.stderr


@pytest.mark.parametrize("flag", [["--prune"], ["--max-deletes", "50"], ["--select", "team=x"], ["--rotate-secrets"]])
def test_options_that_shape_a_plan_are_refused_with_a_saved_one(backend: Backend, manifests: Manifests,
                                                                tmp_path: Path, flag: list[str]) -> None:
    path = tmp_path / "p.plan"
    assert run(backend, manifests, "plan", str(manifests.path), "--out", str(path)).returncode == 0
    done = run(backend, manifests, "apply", str(path), *flag)
    assert done.returncode == 1 and "shape a plan when it is made" in done.stderr and flag[0] in done.stderr
    assert history(backend.url) == []
    json.loads(path.read_text())  # untouched
