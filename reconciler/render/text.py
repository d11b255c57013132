"""Text for people: diagnostics like a compiler, plans like Terraform, reports line by line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reconciler.apply import ApplyReport
from reconciler.changes import (
    APPLIED,
    CREATE,
    DELETE,
    FAILED,
    NOT_VERIFIABLE,
    REPLACE,
    UPDATE,
    Change,
    FieldDiff,
)
from reconciler.diagnostics import Diagnostic
from reconciler.lastwrite import provenance_line
from reconciler.plan import Plan
from reconciler.render import Style
from reconciler.state import to_json

SYMBOL = {CREATE: "+", UPDATE: "~", DELETE: "-", REPLACE: "-/+"}
COLOR = {CREATE: "green", UPDATE: "yellow", DELETE: "red", REPLACE: "red"}
VERB = {
    CREATE: "will be created",
    UPDATE: "will be updated in place",
    DELETE: "will be deleted",
    REPLACE: "must be replaced",
}


def render_diagnostics(diagnostics: list[Diagnostic], style: Style,
                       source: Callable[[str], str | None] | None = None) -> str:
    """One line per diagnostic; with `source` (a file's text by name), the offending line under it
    with a caret at the column, as compilers print them."""
    from reconciler.render.excerpt import excerpt

    out = []
    for d in diagnostics:
        level = style(d.severity, "red" if d.severity == "error" else "yellow")
        out.append(f"{d.where}: {level} {style(d.code, 'bold')} {d.message}\n")
        if source is not None:
            out.append(excerpt(d, source, style))
    return "".join(out)


def diagnostics_summary(errors: int, warnings: int, files: int) -> str:
    if not errors and not warnings:
        return f"All manifests are valid ({files} file{'s' if files != 1 else ''}).\n"
    return f"{_count(errors, 'error')}, {_count(warnings, 'warning')} in {_count(files, 'file')}.\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _value(value: Any) -> str:
    return json.dumps(to_json(value), sort_keys=True, ensure_ascii=False)


DERIVED = " (derived)"  # a value the author never wrote: a default of the tool or the gateway


def is_derived(d: FieldDiff, derived: frozenset[str] | set[str]) -> bool:
    """Whether the diff is of a field the author never wrote (see desired.source_of)."""
    return bool(derived) and d.path.split(".")[0].split("[")[0] in derived


def derived_fields(plan: Plan, change: Change) -> frozenset[str]:
    return frozenset(plan.sources.get(change.id, {}).get("derived", ()))


def _field_line(d: FieldDiff, action: str, style: Style, derived: frozenset[str] = frozenset()) -> str:
    line = _field_text(d, action, style)
    return line + style(DERIVED, "dim") if is_derived(d, derived) else line


def _field_text(d: FieldDiff, action: str, style: Style) -> str:
    if d.sensitive:
        symbol = {CREATE: "+", DELETE: "-"}.get(action, "~")
        return f"      {style(symbol, COLOR.get(action, 'yellow'))} {d.path}: {d.note}"
    if action == CREATE or (d.before is None and d.after is not None):
        return f"      {style('+', 'green')} {d.path}: {_value(d.after)}"
    if action == DELETE or d.after is None:
        return f"      {style('-', 'red')} {d.path}: {_value(d.before)}"
    return f"      {style('~', 'yellow')} {d.path}: {_value(d.before)} -> {_value(d.after)}"


def render_change(change: Change, style: Style, address: str = "", derived: frozenset[str] = frozenset(),
                  written: str = "") -> str:
    header = f"  # {change.id} {VERB[change.action]}"
    if change.reason:
        header += f" ({change.reason})"
    symbol = style(SYMBOL[change.action].rjust(3), COLOR[change.action])
    lines = [style(header, "bold"), f"{symbol} {address or change.kind + ' ' + '/'.join(change.key)}"]
    if change.action != DELETE:
        lines += [_field_line(d, change.action, style, derived) for d in change.field_diffs()]
    if change.needs:
        lines.append(style(f"      (apply reads {', '.join(change.needs)})", "dim"))
    if written:
        lines.append(style(f"      ({written})", "dim"))
    return "\n".join(lines) + "\n"


def plan_summary(plan: Plan) -> str:
    s = plan.summary()
    line = (
        f"Plan: {s['create']} to create, {s['update']} to update, "
        f"{s['replace']} to replace, {s['delete']} to delete."
    )
    if s["unmanaged"]:
        line += f" {s['unmanaged']} unmanaged object(s) left alone (--prune deletes them)."
    if plan.not_selected:
        line += f" {not_selected_note(plan)}."
    return line


def not_selected_note(plan: Plan) -> str:
    n = len(plan.not_selected)
    return f"{n} object{'s' if n != 1 else ''} in the store not selected by --select {', '.join(plan.options.select)}"


def unverifiable_note(refs: list[str], shown: int = 5) -> str:
    unique = sorted(set(refs))
    listed = ", ".join(unique[:shown]) + (" …" if len(unique) > shown else "")
    return (
        f"{len(unique)} secret(s) {NOT_VERIFIABLE}, planned as unchanged (the store never shows "
        f"them, or they are not available to plan): {listed}"
    )


def render_plan(plan: Plan, style: Style) -> str:
    out: list[str] = []
    if plan.empty:
        if plan.unmanaged:
            n = len(plan.unmanaged)
            out.append(style("No changes to apply.", "yellow") + f" {n} object{'s' if n != 1 else ''} in the store "
                       f"{'are' if n != 1 else 'is'} not in the manifests (left alone; --prune deletes them).\n")
        elif plan.options.select:
            out.append(style("No changes.", "green") + " The selected objects in the store match the manifests.\n")
        else:
            out.append(style("No changes.", "green") + " The store matches the manifests.\n")
    else:
        out.append("reconciler will perform the following actions:\n\n")
        out += [render_change(c, style, plan.address(c), derived_fields(plan, c), provenance_line(plan, c.id)) + "\n"
                for c in plan.changes]
    out.append(plan_summary(plan) + "\n")
    out += [style("Warning: ", "yellow") + note + "\n" for note in plan.notes]
    if plan.unverifiable:
        out.append(style("Note: ", "cyan") + unverifiable_note(plan.unverifiable) + "\n")
    if plan.refusal:
        out.append(style("Error: ", "red") + plan.refusal + "\n")
    return "".join(out)


def render_report(report: ApplyReport, style: Style) -> str:
    out: list[str] = []
    marks = {APPLIED: style("applied", "green"), FAILED: style("failed", "red")}
    for r in report.results:
        status = marks.get(r.status, style(r.status, "dim"))
        line = f"{status:>7} {r.change.action} {r.change.id}"
        if r.error:
            line += f": {r.error}"
        out.append(line + "\n")
        out += [f"          {detail}\n" for detail in r.details]
    counts = report.counts()
    if not report.results:
        out.append("Apply complete: no changes.\n")
    else:
        verdict = "Apply complete" if report.ok else style("Apply failed", "red")
        out.append(
            f"{verdict}: {counts['applied']} applied, {counts['failed']} failed, "
            f"{counts['skipped']} skipped.\n"
        )
    return "".join(out)
