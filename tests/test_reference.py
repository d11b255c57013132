"""docs/REFERENCE.md is what the JSON Schemas give, and names every field they define."""

from __future__ import annotations

from reconciler.manifest.loader import KINDS
from reconciler.reference import render_reference
from reconciler.validate.schema import load_schema
from tests.conftest import ROOT

REFERENCE = ROOT / "docs" / "REFERENCE.md"


def test_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), (
        "docs/REFERENCE.md is stale: python -m reconciler.reference > docs/REFERENCE.md")


def _fields(node: dict, prefix: str = "") -> set[str]:
    out = set()
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        out.add(path)
        if isinstance(child, dict):
            out |= _fields(child, path)
            if isinstance(child.get("items"), dict):
                out |= _fields(child["items"], f"{path}[]")
    return out


def test_every_schema_field_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    for kind in KINDS:
        schema = load_schema(kind)
        assert f"\n## {kind}\n" in text
        for path in _fields(schema):
            assert f"| `{path}` |" in text, f"{kind}: {path} is missing from docs/REFERENCE.md"
    assert "| `spec.priority` | integer |  | `0` |" in text
