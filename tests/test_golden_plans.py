"""Golden plans: each folder under tests/golden/ holds desired manifests, the actual state,
options, and the plan JSON the planner must produce.

    desired/*.yaml   the manifests
    actual.json      {"Provider": [{"key": [...], "record": {...}}], ..., "meta": [...]}
                     a secret slot is {"$fingerprint_of": "plaintext"} (the store's keyed view)
    options.json     {"prune", "max_deletes", "select", "rotate_secrets", "env": {NAME: value}}
    plan.json        the expected `plan.to_dict()`

Regenerate after an intended change with RECONCILER_REGEN_GOLDEN=1, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.plan import Plan, PlanOptions
from reconciler.prices import default_price_book
from reconciler.run import make_plan
from reconciler.secrets import Secret, SecretResolver, fingerprint
from reconciler.state import KIND_ORDER, State
from reconciler.stores.base import Capabilities

GOLDEN = Path(__file__).parent / "golden"
SALT = b"golden-salt"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$fingerprint_of"}:
            return Secret(ref=None, view=fingerprint(SALT, value["$fingerprint_of"]))
        return {k: _secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secrets(v) for v in value]
    return value


class StateStore:
    """A read-only store over a fixed State: the planner's input, nothing more."""

    url = "golden://"
    capabilities = Capabilities(transactional=True, secret_view="fingerprint")

    def __init__(self, state: State) -> None:
        self.state = state

    def read(self) -> State:
        return self.state

    def secret_view(self, plaintext: str, group: str) -> str | None:
        return fingerprint(SALT, plaintext)

    def refusals(self, changes: object) -> dict[str, list[str]]:
        return {}

    def read_access(self, state: object, models: object) -> None:
        return None


def load_actual(path: Path) -> State:
    raw = json.loads(path.read_text()) if path.exists() else {}
    state = State(default_prices=default_price_book())
    for kind in KIND_ORDER:
        for item in raw.get(kind, []):
            state.of(kind)[tuple(item["key"])] = _secrets(item["record"])
    for item in raw.get("meta", []):
        state.meta[(item["kind"], tuple(item["key"]))] = item["meta"]
    return state


def run_case(case: Path) -> Plan:
    options = json.loads((case / "options.json").read_text()) if (case / "options.json").exists() else {}
    plan_options = PlanOptions(
        prune=options.get("prune", False),
        max_deletes=options.get("max_deletes", 10),
        select=tuple(options.get("select", [])),
        rotate_secrets=options.get("rotate_secrets", False),
    )
    store = StateStore(load_actual(case / "actual.json"))
    resolver = SecretResolver(options.get("env", {}))
    return make_plan([str(case / "desired")], store, plan_options, resolver).plan  # type: ignore[arg-type]


@pytest.mark.parametrize("name", CASES)
def test_golden_plan(name: str) -> None:
    case = GOLDEN / name
    got = run_case(case).to_dict()
    expected_file = case / "plan.json"
    if os.environ.get("RECONCILER_REGEN_GOLDEN"):
        expected_file.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    expected = json.loads(expected_file.read_text())
    assert got == expected


def test_golden_cases_cover_the_required_situations() -> None:
    required = {"create", "update", "delete-unmanaged", "delete-prune", "replace", "protect", "max-deletes",
                "default-switch", "price-defaults", "secret-rotation", "no-op"}
    assert required <= set(CASES)


def test_no_plan_holds_a_secret_value() -> None:
    for name in CASES:
        case = GOLDEN / name
        options = case / "options.json"
        env = json.loads(options.read_text()).get("env", {}) if options.exists() else {}
        text = json.dumps(run_case(case).to_dict())
        for value in env.values():
            assert value not in text


def test_whole_floats_in_integer_fields_plan_as_integers(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: p}\nspec: {type: openai}\n---\n"
        "apiVersion: reconciler/v1\nkind: Model\nmetadata: {name: m}\n"
        "spec: {provider: p, model: m, context_limit: 200000.0, default: true,"
        " config: {max_output_tokens: 4096.0, temperature: 1.0}}\n"
    )
    plan = make_plan([str(tmp_path)], StateStore(State(default_prices=default_price_book())),  # type: ignore[arg-type]
                     PlanOptions(), SecretResolver({})).plan
    model = next(c for c in plan.changes if c.kind == "Model")
    assert model.after is not None
    limit, tokens = model.after["context_limit"], model.after["config"]["max_output_tokens"]
    assert (limit, tokens) == (200000, 4096) and type(limit) is int and type(tokens) is int


def test_depending_on_keeps_every_other_field_of_the_change() -> None:
    """`Change.depending_on` spells out the fields that `dataclasses.replace` would copy: a field added
    to Change and forgotten there fails here."""
    import dataclasses

    from reconciler.changes import UPDATE, Change, FieldDiff

    values = {f.name: object() for f in dataclasses.fields(Change)}
    values.update(action=UPDATE, diff=(FieldDiff("display_name", "a", "b"),))
    change = Change(**values)
    assert change.depending_on(("Provider/x",)) == dataclasses.replace(change, depends_on=("Provider/x",))
