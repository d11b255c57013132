"""Validation in worker processes gives exactly what one process gives: same diagnostics, same
order, same documents; and the node trees do not outlive loading, yet every diagnostic is placed."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.validate import PARALLEL_MIN_FILES, validate_paths
from tests.conftest import run_cli

PROVIDER = """apiVersion: reconciler/v1
kind: Provider
metadata: {{name: p{n:04d}}}
spec:
  type: openai
  api_keys: [{{env: KEY_{n:04d}}}]
  display_name: "Provider number {n} with a name long enough to make the file a little larger"
"""
MODEL = """apiVersion: reconciler/v1
kind: Model
metadata: {{name: m{n:04d}, labels: {{team: t{t}, purpose: "a label to make the file a little larger"}}}}
spec:
  provider: p{p:04d}
  model: gpt-5-{n}
  context_limit: {limit}
  config: {{temperature: {temp}, max_output_tokens: 32000}}
"""


def many_files(root: Path, count: int) -> Path:
    root.mkdir()
    for n in range(count):
        if n % 2 == 0:
            text = PROVIDER.format(n=n)
        else:
            limit = -5 if n % 97 == 1 else 200000  # a schema error now and then
            temp = 3 if n % 89 == 3 else 0.5  # and a range error
            text = MODEL.format(n=n, t=n % 7, p=n - 1 if n % 83 else 99999, limit=limit, temp=temp)
        (root / f"f{n:05d}.yaml").write_text(text)
    (root / "broken.yaml").write_text("apiVersion: reconciler/v1\nkind: Model\nmetadata: [\n")
    return root


def test_jobs_change_nothing_but_speed(tmp_path: Path) -> None:
    root = many_files(tmp_path / "m", PARALLEL_MIN_FILES + 200)
    one = validate_paths([str(root)], jobs=1)
    two = validate_paths([str(root)], jobs=2)
    assert one.diagnostics == two.diagnostics and len(one.diagnostics) > 10
    assert [(d.file, d.index, d.data) for d in one.documents] == [(d.file, d.index, d.data) for d in two.documents]
    def typed(result):  # type: ignore[no-untyped-def]
        return [(m.name, m.provider, m.model, m.config, m.meta.labels) for m in result.manifests.models]

    assert typed(one) == typed(two) and len(typed(one)) > 100
    assert all(d.node is None for d in two.documents)  # positions come from the kept text
    outputs = [run_cli("validate", str(root), "--format", "json", "--jobs", jobs) for jobs in ("1", "2")]
    assert outputs[0].returncode == outputs[1].returncode == 1
    assert outputs[0].stdout == outputs[1].stdout
    codes = {d["code"] for d in json.loads(outputs[0].stdout)["diagnostics"]}
    assert {"RC201", "RC402", "RC105"} <= codes


def test_a_position_is_found_again_after_the_tree_is_freed(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: m}\nspec:\n  provider: nowhere\n"
        "  model: x\n  context_limit: 1000\n---\n# a second document after a comment\n"
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: n}\nspec:\n  provider: elsewhere\n"
        "  model: y\n  context_limit: 1000\n")
    result = validate_paths([str(tmp_path)], jobs=1)
    placed = sorted((d.line, d.column, d.code) for d in result.diagnostics if d.code == "RC402")
    assert placed == [(5, 13, "RC402"), (14, 13, "RC402")]
    assert all(d.node is None for d in result.documents)
