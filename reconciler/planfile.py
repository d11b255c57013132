"""Saved plans: `plan --out FILE` writes one, `apply FILE` applies exactly it or refuses.

The file holds the changes (records with secret references, never values),
the fingerprint of the store state the plan was made against, and a checksum
over all of it, so an altered file or a changed store is refused with a reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

from reconciler import __version__
from reconciler.changes import Change
from reconciler.errors import PlanFileError
from reconciler.plan import FORMAT_VERSION, Plan, PlanOptions

MARKER = "reconciler-plan"


def _checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def save_plan(plan: Plan, store_url: str, path: str) -> None:
    body = {
        "kind": MARKER,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "store": store_url,
        "state_fingerprint": plan.fingerprint(),
        "options": {
            "prune": plan.options.prune,
            "max_deletes": plan.options.max_deletes,
            "select": [list(s) for s in plan.options.select],
            "rotate_secrets": plan.options.rotate_secrets,
        },
        "plan": plan.to_dict(),
        "changes": [c.to_saved() for c in plan.changes],
    }
    head = {"kind": MARKER, "checksum": _checksum(body)}  # first: `is_plan_file` reads only the head
    ordered = {**head, **{name: _sorted(body[name]) for name in sorted(body) if name not in head}}
    write_atomic(path, json.dumps(ordered, indent=2) + "\n")


def _sorted(value: Any) -> Any:
    """`value` with the keys of every mapping in sorted order, as `sort_keys` would write them."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def is_plan_file(path: str) -> bool:
    if not os.path.isfile(path) or path.endswith((".yaml", ".yml")):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return MARKER.encode() in head or (head.lstrip()[:1] == b"{" and b'"checksum"' in head)


def load_plan(path: str) -> tuple[Plan, str]:
    """(the plan, the store URL it was made for); PlanFileError says why a file is refused."""
    try:
        with open(path, encoding="utf-8") as fh:
            body = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanFileError(f"{path}: not a readable plan file ({exc})") from None
    if not isinstance(body, dict) or body.get("kind") != MARKER:
        raise PlanFileError(f"{path}: not a reconciler plan file")
    recorded = body.pop("checksum", None)
    if recorded != _checksum(body):
        raise PlanFileError(f"{path}: the plan file was altered after it was written (checksum mismatch)")
    if body.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(f"{path}: plan format {body.get('format_version')} is not supported")
    try:
        options = body["options"]
        plan = Plan(
            changes=[Change.from_saved(c) for c in body["changes"]],
            state_fingerprint=body["state_fingerprint"],
            options=PlanOptions(
                prune=options["prune"],
                max_deletes=options["max_deletes"],
                select=tuple((k, v) for k, v in options["select"]),
                rotate_secrets=options["rotate_secrets"],
            ),
            unmanaged=list(body["plan"].get("unmanaged", [])),
            notes=list(body["plan"].get("notes", [])),
            refusal=body["plan"].get("refusal", ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"{path}: malformed plan file ({exc})") from None
    return plan, str(body.get("store", ""))


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # The temporary name must not end like the target: collectors that read `*.prom` or `*.json`
    # from a directory (node-exporter's textfile collector) would pick up half a file.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
