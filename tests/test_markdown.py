"""The Markdown plan renderer: golden comments, and the rules that hold for any plan.

Golden files live in tests/golden_markdown/<case>.md. The cases reuse the
inputs of the golden plans (tests/golden/<case>/) and add three: a store that
cannot delete some kinds, a plan with validation warnings, and a generated
plan of 500 changes that must be cut to fit a GitHub comment. Regenerate after
an intended change with RECONCILER_REGEN_GOLDEN=1, then review the diff.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

import tests.test_golden_plans as golden
from reconciler.changes import CREATE, DELETE, UPDATE, Change, FieldDiff
from reconciler.plan import Plan, PlanOptions
from reconciler.prices import default_price_book
from reconciler.render.markdown import COMMENT_LIMIT, HEADROOM, MARKER, render_plan_markdown
from reconciler.run import make_plan
from reconciler.secrets import SecretResolver
from reconciler.state import MODEL, PROVIDER, Key, Record, State
from reconciler.stores.base import Capabilities
from reconciler.validate import validate_paths

GOLDEN_MD = Path(__file__).parent / "golden_markdown"
FROM_PLAN_GOLDENS = ["create", "update", "replace", "delete-prune", "delete-unmanaged", "protect",
                     "max-deletes", "secret-added", "default-switch", "no-op"]
LIMIT = COMMENT_LIMIT - HEADROOM


class NoDeleteStore(golden.StateStore):
    """A store that can delete providers but not models (as some APIs cannot)."""

    capabilities = Capabilities(transactional=False, secret_view="masked", deletable=frozenset({PROVIDER}))


def _big_manifests(root: Path) -> None:
    """20 providers with 24 models each: 500 objects."""
    docs = []
    for p in range(20):
        docs.append(f"""apiVersion: reconciler/v1
kind: Provider
metadata: {{name: llm-{p:02d}}}
spec:
  type: openai-compat
  base_url: https://llm-{p:02d}.example.com/v1
  api_keys: [{{env: LLM_{p:02d}_KEY}}]
""")
        for m in range(24):
            docs.append(f"""apiVersion: reconciler/v1
kind: Model
metadata: {{name: m-{p:02d}-{m:02d}}}
spec:
  provider: llm-{p:02d}
  model: model-{m:02d}
  display_name: Model {m} on provider {p}
  context_limit: 128000
  pricing: {{input: 1, output: 2}}
""")
    root.mkdir()
    (root / "all.yaml").write_text("---\n".join(docs))


def price_book() -> dict[Key, Record]:
    return {tuple(key): dict(record) for key, record in default_price_book().items()}


def big_plan(tmp_path: Path) -> Plan:
    """100 creates, 300 updates, 2 replaces and 98 deletes, through the real planner."""
    desired_dir = tmp_path / "big"
    _big_manifests(desired_dir)
    empty = golden.StateStore(State(default_prices=price_book()))
    mirror = make_plan([str(desired_dir)], empty, PlanOptions(), SecretResolver({})).plan  # type: ignore[arg-type]
    actual = State(default_prices=price_book())
    for change in mirror.changes:
        assert change.after is not None
        actual.of(change.kind)[change.key] = copy.deepcopy(change.after)
    models = sorted(actual.of(MODEL))
    for key in models[:100]:
        del actual.of(MODEL)[key]  # -> 100 creates
    for key in models[100:400]:
        actual.of(MODEL)[key]["context_limit"] = 64000  # -> 300 updates
    for name in ("llm-00", "llm-01"):
        actual.of(PROVIDER)[(name,)]["type"] = "openai"  # -> 2 replaces
    for i in range(98):
        record = dict(actual.of(MODEL)[models[400]], display_name=f"retired {i}")
        actual.of(MODEL)[("default", "llm-19", f"retired-{i:02d}")] = record  # -> 98 deletes
    options = PlanOptions(prune=True, max_deletes=200)
    store = golden.StateStore(actual)
    return make_plan([str(desired_dir)], store, options, SecretResolver({})).plan  # type: ignore[arg-type]


def render_case(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if name in FROM_PLAN_GOLDENS:
        return render_plan_markdown(golden.run_case(golden.GOLDEN / name))
    if name == "cannot-delete":
        monkeypatch.setattr(golden, "StateStore", NoDeleteStore)
        return render_plan_markdown(golden.run_case(golden.GOLDEN / "delete-prune"))
    if name == "validation-warnings":
        case = golden.GOLDEN / "default-unmanaged"
        diagnostics = validate_paths([str(case / "desired")]).diagnostics
        assert diagnostics, "the case must produce warnings for this test to mean anything"
        text = render_plan_markdown(golden.run_case(case), diagnostics)
        return text.replace(str(golden.GOLDEN), "tests/golden")
    assert name == "big-500"
    return render_plan_markdown(big_plan(tmp_path))


CASES = [*FROM_PLAN_GOLDENS, "cannot-delete", "validation-warnings", "big-500"]


@pytest.mark.parametrize("name", CASES)
def test_golden_markdown(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = render_case(name, tmp_path, monkeypatch)
    expected_file = GOLDEN_MD / f"{name}.md"
    if os.environ.get("RECONCILER_REGEN_GOLDEN"):
        GOLDEN_MD.mkdir(exist_ok=True)
        expected_file.write_text(got, encoding="utf-8")
    assert got == expected_file.read_text(encoding="utf-8")
    assert_well_formed(got)


def assert_well_formed(text: str) -> None:
    assert text.startswith(MARKER + "\n")
    assert len(text.encode("utf-8")) <= LIMIT
    assert text.count("<details>") == text.count("</details>")
    assert text.count("```") % 2 == 0


def test_summary_comes_first_and_details_are_collapsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = render_case("update", tmp_path, monkeypatch)
    summary_at = text.index("**Plan: 0 to create, 4 to update")
    assert summary_at < text.index("| kind |") < text.index("<details>")
    plan = golden.run_case(golden.GOLDEN / "update")
    for change in plan.changes:
        assert f"<code>{change.id}</code></summary>" in text


def test_refusal_warnings_and_cannot_delete_notes_are_outside_the_collapsed_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = render_case("max-deletes", tmp_path, monkeypatch)
    assert "> [!CAUTION]\n> **apply would refuse this plan:** the plan deletes or replaces 3 objects" in refused
    cannot = render_case("cannot-delete", tmp_path, monkeypatch)
    head = cannot.split("<details>", 1)[0]
    assert "> [!WARNING]" in head and "cannot be deleted: the store has no way to remove a Model" in head
    protected = render_case("protect", tmp_path, monkeypatch).split("<details>", 1)[0]
    assert "Provider/legacy is protected" in protected


def test_no_secret_value_reaches_the_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("create", "update", "replace"):
        env = json.loads((golden.GOLDEN / name / "options.json").read_text())["env"]
        text = render_case(name, tmp_path, monkeypatch)
        assert env and not any(value in text for value in env.values())


def test_500_changes_are_cut_to_fit_with_a_note_and_every_change_accounted_for(tmp_path: Path) -> None:
    plan = big_plan(tmp_path)
    assert plan.summary() == {"create": 100, "update": 300, "replace": 2, "delete": 98, "unmanaged": 0}
    text = render_plan_markdown(plan)
    assert_well_formed(text)
    detailed = re.findall(r"<summary>\S+ <b>\w+</b> (?:[^<]*<b>[^<]*</b> [^<]*)?<code>([^<]+)</code>", text)
    listed = re.findall(r"^- \S+ \w+ .*`([^`]+)`$", text, re.MULTILINE)
    more = re.search(r"… and (\d+) more, in the plan artifact", text)
    assert 50 < len(detailed) < 500  # readable: many details, the rest one line each
    assert len(detailed) + len(listed) + (int(more.group(1)) if more else 0) == 500
    assert detailed + listed == [c.id for c in plan.changes][: len(detailed) + len(listed)]
    note = f"**This comment shows the details of {len(detailed)} of 500 changes**"
    assert note in text and "plan artifact" in text
    assert text.index(note) < text.index("<details>")  # seen before scrolling
    assert "**Plan: 100 to create, 300 to update, 2 to replace, 98 to delete.**" in text


def _synthetic(n: int, note: str = "", reason: str = "") -> Plan:
    changes = [
        Change(CREATE if i % 3 else UPDATE, MODEL, ("default", "p", f"model-{i:05d}"), before=None,
               after={"display_name": f"Model {i}"},
               diff=(FieldDiff("display_name", f"old {i}", f"Model {i} " + "x" * 120),), reason=reason)
        for i in range(n)
    ]
    sources = {c.id: {"manifest": f"Model/m-{i}", "file": "models/all.yaml", "line": 10 * i + 3}
               for i, c in enumerate(changes)}
    return Plan(changes=changes, state_fingerprint="sha256:0", notes=[note] if note else [], sources=sources)


@pytest.mark.parametrize("limit", [4_000, 20_000, LIMIT])
def test_any_size_fits_any_limit(limit: int) -> None:
    for n in (0, 1, 40, 10_000):
        text = render_plan_markdown(_synthetic(n), limit=limit)
        assert len(text.encode("utf-8")) <= limit, (n, limit)
        assert text.count("<details>") == text.count("</details>")


def test_10000_changes_fit_with_their_addresses_and_a_summary() -> None:
    text = render_plan_markdown(_synthetic(10_000))
    assert len(text.encode("utf-8")) <= LIMIT < 65_536
    assert "of 10000 changes**" in text and "in the plan artifact" in text
    assert "Model <b>m-0</b> (models/all.yaml:3) <code>Model/default/p/model-00000</code>" in text


def test_text_from_manifests_cannot_inject_markup_or_break_fences() -> None:
    plan = _synthetic(2, note="<img src=x onerror=alert(1)> see `here`\nnext line",
                      reason="type cannot change ```\n</details><script>")
    text = render_plan_markdown(plan)
    assert text.count("```") % 2 == 0
    outside_code = re.sub(r"^```diff\n.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    assert "<img" not in outside_code and "<script" not in outside_code
    assert outside_code.count("<details>") == outside_code.count("</details>") == 2
    code_lines = re.findall(r"^```diff\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    assert all(line.startswith(("#", "+", "-", "!")) for block in code_lines for line in block.splitlines())


def test_long_values_are_cut_in_the_comment_only() -> None:
    change = Change(DELETE, PROVIDER, ("huge",), before={"icon": "y" * 5000}, after=None,
                    diff=(FieldDiff("icon", "y" * 5000, None),))
    text = render_plan_markdown(Plan(changes=[change], state_fingerprint="sha256:0"))
    line = next(line for line in text.splitlines() if line.startswith("- icon:"))
    assert line.endswith("…") and len(line) <= 400
    assert change.to_dict()["diff"][0]["before"] == "y" * 5000
