"""`reconciler envs diff A B`: how two environments' desired states differ, object by object and
field by field, for reviewing a promotion. Reads no store: both sides are what the manifests ask for.
Secrets compare by their references (`{"$secret": "env:NAME"}`), never by value: no value is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.project import Project
from reconciler.state import KIND_ORDER, Key, State, key_text, to_json

MISSING = object()


@dataclass
class ObjectDiff:
    kind: str
    key: Key
    only_in: str | None = None  # the environment that alone has the object; None when both do
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)  # (path, in A, in B); MISSING when absent

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "key": key_text(self.key)}
        if self.only_in:
            out["only_in"] = self.only_in
        else:
            out["fields"] = [{"path": p, **({"a": a} if a is not MISSING else {}),
                              **({"b": b} if b is not MISSING else {})} for p, a, b in self.fields]
        return out


@dataclass
class EnvDiff:
    a: str
    b: str
    objects: list[ObjectDiff]

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": "1", "a": self.a, "b": self.b, "differences": [o.to_dict() for o in self.objects]}


def desired_of(project: Project, env: str, jobs: int | None = None) -> tuple[Any, State | None]:
    """(the validation of the environment's manifests, their desired state, None when invalid)."""
    from reconciler.desired import desired_state

    validation = project.layout(env, (), (), True).validate(jobs)
    if not validation.ok():
        return validation, None
    return validation, desired_state(validation.manifests, State(), lambda ref, group: None)


def diff_states(a_name: str, a: State, b_name: str, b: State) -> EnvDiff:
    out = []
    for kind in KIND_ORDER:
        left, right = a.of(kind), b.of(kind)
        for key in sorted(set(left) | set(right)):
            if key not in right:
                out.append(ObjectDiff(kind, key, only_in=a_name))
            elif key not in left:
                out.append(ObjectDiff(kind, key, only_in=b_name))
            else:
                record_a = {**to_json(left[key]), "metadata": a.meta.get((kind, key))}
                record_b = {**to_json(right[key]), "metadata": b.meta.get((kind, key))}
                fields: list[tuple[str, Any, Any]] = []
                _fields(record_a, record_b, "", fields)
                if fields:
                    out.append(ObjectDiff(kind, key, fields=fields))
    return EnvDiff(a_name, b_name, out)


def _fields(a: Any, b: Any, path: str, out: list[tuple[str, Any, Any]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict) and set(a) != {"$secret"} and set(b) != {"$secret"}:
        for k in sorted(set(a) | set(b), key=str):
            _fields(a.get(k, MISSING), b.get(k, MISSING), f"{path}.{k}" if path else str(k), out)
    elif a != b:
        out.append((path, a, b))


def render_text(diff: EnvDiff) -> str:
    import json

    def plain(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"$secret"}:
            return f"secret {value['$secret']}"
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, list) else value

    def shown(value: Any) -> str:
        return "(absent)" if value is MISSING else json.dumps(plain(value), sort_keys=True, ensure_ascii=False)

    if not diff.objects:
        return f"{diff.a} and {diff.b} ask for the same state.\n"
    lines = [f"{diff.a} → {diff.b}: {len(diff.objects)} object{'s' if len(diff.objects) != 1 else ''} differ\n"]
    for obj in diff.objects:
        name = f"{obj.kind} {key_text(obj.key)}"
        if obj.only_in == diff.a:
            lines.append(f"- {name}  (only in {diff.a})\n")
        elif obj.only_in == diff.b:
            lines.append(f"+ {name}  (only in {diff.b})\n")
        else:
            lines.append(f"~ {name}\n")
            lines += [f"    {path}: {shown(a)} → {shown(b)}\n" for path, a, b in obj.fields]
    return "".join(lines)
