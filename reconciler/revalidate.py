"""What a saved plan would write, validated again at apply with the manifests' own rules.

A saved plan is signed, so only a key holder can alter it; this is the second
line: the store as the plan would leave it is exported to manifests (in
memory), and those go through the same loader, schema pass and rules as files
in a repository. A record that validation refuses is never written, whoever
made the plan and with whatever version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.changes import DELETE, Change
from reconciler.diagnostics import ERROR, Diagnostic
from reconciler.prices import PRICE_FIELDS
from reconciler.state import PRICE, State

if TYPE_CHECKING:
    from reconciler.manifest.model import Manifests


def after_changes(actual: State, changes: list[Change]) -> State:
    """The store as it would be once every change is applied."""
    state = State(default_organization=actual.default_organization, default_prices=actual.default_prices)
    for kind, key, record in actual.items():
        state.of(kind)[key] = record
        state.meta[(kind, key)] = actual.meta.get((kind, key), {"labels": {}, "annotations": {}})
    for change in changes:
        if change.moved_from is not None and change.moved_from in state.of(change.kind):
            state.move_model(change.moved_from, change.key)
        if change.action == DELETE:
            state.of(change.kind).pop(change.key, None)
        elif change.after is not None:
            state.of(change.kind)[change.key] = change.after
    return state


def refused_writes(actual: State, changes: list[Change]) -> list[Diagnostic]:
    """The errors validation finds in the store as the changes would leave it."""
    from reconciler.export import export_state
    from reconciler.manifest.loader import load_bytes
    from reconciler.manifest.model import build_manifests
    from reconciler.validate.rules import check_rules
    from reconciler.validate.schema import check_documents

    if not changes:
        return []
    exported = export_state(after_changes(actual, changes))
    documents, problems = [], []
    for manifest in exported.files:
        loaded, found = load_bytes(manifest.body().encode(), manifest.path)
        documents += loaded
        problems += found
    valid, schema_problems = check_documents(documents)
    manifests = build_manifests(valid)
    problems += schema_problems + check_rules(manifests)
    refused = [d for d in problems if d.severity == ERROR]
    if not refused:
        refused += _not_expressible(actual, changes, manifests)
    return refused


def _not_expressible(actual: State, changes: list[Change], manifests: Manifests) -> list[Diagnostic]:
    """Records that no manifest could produce: the manifests exported from them plan back to
    something else (a "yes" where a boolean belongs, a field no manifest has)."""
    from reconciler.desired import desired_state

    again = desired_state(manifests, actual, lambda ref, group: None)
    out = []
    for change in changes:
        if change.after is None:
            continue
        if change.kind == PRICE:  # export leaves out prices equal to the book: check their shape instead
            if set(change.after) == set(PRICE_FIELDS) and all(
                    v is None or (type(v) is int and 0 <= v < 2**63) for v in change.after.values()):
                continue
        elif again.of(change.kind).get(change.key) == change.after:
            continue
        out.append(Diagnostic(change.id, 0, 0, ERROR, "RC201",
                              "the record is not one that manifests can express (a wrong type, or a field "
                              "no manifest has)"))
    return out
