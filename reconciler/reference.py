"""docs/REFERENCE.md, generated from the JSON Schemas so that the manual cannot drift from them:
every kind, every field with its type, whether it is required, its default, its allowed values
and limits, and its description. `python -m reconciler.reference > docs/REFERENCE.md` writes it;
`tests/test_reference.py` fails when the file is not what the schemas give.
"""

from __future__ import annotations

import json
from typing import Any

HEADER = """# Manifest reference

Generated from the JSON Schemas in [`schemas/`](../schemas/) by
`python -m reconciler.reference > docs/REFERENCE.md`; do not edit by hand
(`tests/test_reference.py` fails when this file and the schemas differ).
The semantic rules that span fields and documents are in [RULES.md](RULES.md).

Every manifest is a YAML document with `apiVersion: reconciler/v1`, a
`kind`, `metadata` and `spec`. A field marked **required** must be given;
the others take the default shown, or are left unset.
"""


def _inline(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = dict(defs[ref.rsplit("/", 1)[1]])
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = node.get("items") or {}
        inner = items.get("type") if isinstance(items, dict) else None
        return f"list of {inner}" if isinstance(inner, str) else "list"
    if kind == "object" and "properties" not in node and isinstance(node.get("additionalProperties"), dict):
        inner = node["additionalProperties"].get("type")
        return f"map of {inner}" if isinstance(inner, str) else "map"
    return str(kind) if kind else "any"


def _limits(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"]))
    for key, label in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    for key, label in (("minLength", "length ≥"), ("maxLength", "length ≤"), ("minItems", "items ≥"),
                       ("maxItems", "items ≤"), ("minProperties", "entries ≥"), ("maxProperties", "entries ≤")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    return "; ".join(parts)


def _rows(node: dict[str, Any], defs: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> list[str]:
    node = _resolve(node, defs)
    rows = []
    required = set(node.get("required") or [])
    for name, child in (node.get("properties") or {}).items():
        ref = child.get("$ref", "") if isinstance(child, dict) else ""
        child = _resolve(child, defs) if isinstance(child, dict) else {}
        path = f"{prefix}.{name}" if prefix else name
        default = f"`{json.dumps(child['default'])}`" if "default" in child else ""
        rows.append(f"| `{path}` | {_type(child)} | {'**required**' if name in required else ''} | {default} | "
                    f"{_inline(_limits(child))} | {_inline(child.get('description', ''))} |")
        if ref and ref in seen:
            continue
        deeper = (*seen, ref) if ref else seen
        if child.get("type") == "object" or "properties" in child:
            rows += _rows(child, defs, path, deeper)
        elif child.get("type") == "array" and isinstance(child.get("items"), dict):
            items = _resolve(child["items"], defs)
            if "properties" in items:
                rows += _rows(items, defs, f"{path}[]", deeper)
        if isinstance(child.get("additionalProperties"), dict) and "properties" in child["additionalProperties"]:
            rows += _rows(child["additionalProperties"], defs, f"{path}.<name>", deeper)
    for branch in ("then", "else"):  # conditional fields: listed once, with the others
        if isinstance(node.get(branch), dict) and "properties" in node[branch]:
            listed = {row.split(" | ", 1)[0] for row in rows}
            rows += [row for row in _rows(node[branch], defs, prefix, seen) if row.split(" | ", 1)[0] not in listed]
    return rows


def render_reference() -> str:
    from reconciler.manifest.loader import KINDS
    from reconciler.validate.schema import load_schema

    out = [HEADER]
    out.append("Kinds: " + ", ".join(f"[{kind}](#{kind.lower()})" for kind in KINDS) + ".\n")
    for kind in KINDS:
        schema = load_schema(kind)
        defs = schema.get("$defs") or {}
        out.append(f"\n## {kind}\n")
        out.append(_inline(schema.get("description", "")) + "\n")
        out.append("| field | type | | default | allowed | description |")
        out.append("|---|---|---|---|---|---|")
        out += _rows(schema, defs, "", ())
        examples = schema.get("examples") or []
        if examples:
            import yaml

            out.append("\nExample:\n\n```yaml\n" + yaml.safe_dump(examples[0], sort_keys=False).rstrip() + "\n```")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover - the generator's entry point
    import sys

    sys.stdout.write(render_reference())
