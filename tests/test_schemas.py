"""The JSON Schemas: valid Draft 2020-12, documented on every property, and agreed with by a
third-party validator (check-jsonschema) and by our compiled fast path."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

from reconciler.manifest.loader import KINDS
from reconciler.validate.schema import SCHEMA_FILES, combined_schema, load_schema
from tests.conftest import EXAMPLES, ROOT

SCHEMAS = ROOT / "schemas"


def example_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        if {"ci", "environments"} & set(path.relative_to(EXAMPLES).parts):  # examples/ci/: CI files;
            continue  # examples/environments/: overlays (partial documents) and a project file
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and "kind" in d]
    return docs


def mutations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Invalid variants: an unknown field, a wrong type and a missing field at each spec key."""
    out = []
    for key, value in doc["spec"].items():
        wrong = copy.deepcopy(doc)
        wrong["spec"][key] = [] if not isinstance(value, list) else "x"
        out.append(wrong)
        gone = copy.deepcopy(doc)
        del gone["spec"][key]
        out.append(gone)
    extra = copy.deepcopy(doc)
    extra["spec"]["unknwon_field"] = 1
    out.append(extra)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12_with_examples(kind: str) -> None:
    schema = load_schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["examples"], "each schema carries at least one complete example"
    validator = Draft202012Validator(schema)
    for example in schema["examples"]:
        assert list(validator.iter_errors(example)) == []


def _properties(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            found.append((f"{path}.{name}", sub))
        for key, value in node.items():
            found += _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _properties(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_a_description(kind: str) -> None:
    schema = load_schema(kind)
    missing = [path for path, sub in _properties(schema) if not sub.get("description")]
    assert missing == []


def test_combined_schema_dispatches_on_kind() -> None:
    validator = Draft202012Validator(combined_schema())
    docs = example_documents()
    assert {d["kind"] for d in docs} == set(KINDS)
    for doc in docs:
        assert list(validator.iter_errors(doc)) == []
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == "Model"))
    broken["spec"]["context_limit"] = "lots"
    assert list(validator.iter_errors(broken)) != []


def test_fast_path_agrees_with_jsonschema() -> None:
    cases = 0
    for doc in example_documents():
        schema = load_schema(doc["kind"])
        slow = Draft202012Validator(schema)
        fast = fastjsonschema.compile(copy.deepcopy(schema))
        for candidate in [doc, *mutations(doc)]:
            try:
                fast(candidate)
                fast_ok = True
            except fastjsonschema.JsonSchemaException:
                fast_ok = False
            assert fast_ok == slow.is_valid(candidate), json.dumps(candidate)[:300]
            cases += 1
    assert cases > 200


@pytest.mark.skipif(shutil.which("check-jsonschema") is None, reason="check-jsonschema not installed")
def test_check_jsonschema_accepts_our_schemas_and_agrees_on_examples(tmp_path: Path) -> None:
    schemas = [str(SCHEMAS / SCHEMA_FILES[k]) for k in KINDS]
    meta = subprocess.run(["check-jsonschema", "--check-metaschema", *schemas], capture_output=True, text=True)
    assert meta.returncode == 0, meta.stdout + meta.stderr
    by_kind: dict[str, list[Path]] = {k: [] for k in KINDS}
    invalid: dict[str, list[Path]] = {k: [] for k in KINDS}
    for i, doc in enumerate(example_documents()):
        good = tmp_path / f"good-{i}.json"
        good.write_text(json.dumps(doc))
        by_kind[doc["kind"]].append(good)
        bad = tmp_path / f"bad-{i}.json"
        bad.write_text(json.dumps(mutations(doc)[-1]))
        invalid[doc["kind"]].append(bad)
    for kind in KINDS:
        schema = str(SCHEMAS / SCHEMA_FILES[kind])
        ok = subprocess.run(["check-jsonschema", "--schemafile", schema, *map(str, by_kind[kind])],
                            capture_output=True, text=True)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        refused = subprocess.run(["check-jsonschema", "--schemafile", schema, *map(str, invalid[kind])],
                                 capture_output=True, text=True)
        assert refused.returncode == 1
        assert all(f"{bad}::" in refused.stdout for bad in invalid[kind]), refused.stdout


def test_fast_path_never_changes_the_documents() -> None:
    from reconciler.manifest.loader import load_paths
    from reconciler.validate.schema import _passes_fast

    documents = load_paths([str(EXAMPLES)]).documents
    before = [copy.deepcopy(d.data) for d in documents]
    assert all(_passes_fast(d) for d in documents)
    assert [d.data for d in documents] == before  # no schema default was written into them


# --- agreement with Coder's own validation (coder/coder codersdk/chats.go, coderd/exp_chats.go) ----------

MODEL_DOC = """\
apiVersion: reconciler/v1
kind: Provider
metadata: {{name: {family}}}
spec: {{type: {ptype}, base_url: "{url}", api_keys: [{{env: KEY}}]}}
---
apiVersion: reconciler/v1
kind: Model
metadata: {{name: m}}
spec:
  provider: {family}
  model: some-model
  context_limit: 100000
  default: true
  pricing: {{input: 1, output: 2}}
  config: {config}
"""
PROVIDER_OF = {"openai": ("openai", "https://api.openai.com/v1"),
               "google": ("google", "https://generativelanguage.googleapis.com/v1beta/openai")}


@pytest.mark.parametrize(("family", "config", "expected"), [
    # free strings in Coder: any text validates; outside the documented set, a warning
    ("openai", "{provider_options: {openai: {reasoning_summary: brief}}}", {"RC427"}),
    ("openai", "{provider_options: {openai: {service_tier: reserved, reasoning_summary: auto}}}", {"RC427"}),
    ("openai", "{provider_options: {openai: {service_tier: priority, reasoning_summary: detailed}}}", set()),
    ("openai", "{provider_options: {openai: {service_tier: 3}}}", {"RC201"}),
    # Coder validates these: one of minimal..high, and not with thinking_budget
    ("google", "{provider_options: {google: {thinking_config: {thinking_level: minimal}}}}", set()),
    ("google", "{provider_options: {google: {thinking_config: {thinking_level: max}}}}", {"RC201"}),
    ("google", "{provider_options: {google: {thinking_config: {thinking_level: low, thinking_budget: 10}}}}",
     {"RC419"}),
    # Coder refuses one bound of reasoning_effort without the other
    ("openai", "{reasoning_effort: {default: low}}", {"RC201"}),
    ("openai", "{reasoning_effort: {max: high}}", {"RC201"}),
    ("openai", "{reasoning_effort: {default: low, max: high}}", set()),
    # the per-provider effort keys Coder removed are unknown fields
    ("openai", "{provider_options: {openai: {reasoning_effort: high}}}", {"RC201"}),
])
def test_model_options_validate_as_coder_validates_them(tmp_path: Path, family: str, config: str,
                                                        expected: set[str]) -> None:
    from reconciler.validate import validate_paths

    ptype, url = PROVIDER_OF[family]
    (tmp_path / "m.yaml").write_text(MODEL_DOC.format(family=family, ptype=ptype, url=url, config=config))
    assert {d.code for d in validate_paths([str(tmp_path)]).diagnostics} == expected
