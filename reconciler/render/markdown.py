"""Markdown for a sticky pull-request comment: summary first, details collapsible, warnings visible.

GitHub limits a comment to 65,536 characters; a longer plan is cut at an
object boundary with a note pointing at the full plan artifact.
"""

from __future__ import annotations

from reconciler.changes import CREATE, DELETE, REPLACE, UPDATE
from reconciler.plan import ACTIONS, Plan
from reconciler.render import Style
from reconciler.render.text import plan_summary, render_change

MARKER = "<!-- reconciler-plan -->"
COMMENT_LIMIT = 65_536
ICON = {CREATE: "🟢", UPDATE: "🟡", REPLACE: "🟠", DELETE: "🔴"}
PLAIN = Style(False)


def render_plan_markdown(plan: Plan, title: str = "reconciler plan", limit: int = COMMENT_LIMIT) -> str:
    head = [MARKER, f"### {title}", ""]
    if plan.empty:
        head.append("✅ **No changes.** The store matches the manifests.")
    else:
        head.append(f"**{plan_summary(plan)}**")
    head.append("")
    if plan.refusal:
        head += [f"> [!CAUTION]\n> {plan.refusal}", ""]
    for note in plan.notes:
        head += [f"> [!WARNING]\n> {note}", ""]
    if plan.unverifiable:
        refs = ", ".join(f"`{r}`" for r in sorted(set(plan.unverifiable)))
        head += [f"> [!NOTE]\n> Secrets not verifiable at plan time (not available to CI): {refs}", ""]
    if not plan.empty:
        head += _table(plan)
    text = "\n".join(head) + "\n"
    footer = ""
    sections = [_details(plan, kind) for kind in _kinds(plan)]
    for i, section in enumerate(sections):
        if len(text) + len(section) + 400 > limit:
            left = sum(1 for c in plan.changes if c.kind in _kinds(plan)[i:])
            footer = (
                f"\n> [!NOTE]\n> The plan is too long for one comment: details of {left} more "
                "change(s) are left out. The full plan is in the workflow's plan artifact "
                "(`reconciler plan --out` / `--format json`).\n"
            )
            break
        text += section
    return text + footer


def _kinds(plan: Plan) -> list[str]:
    seen: list[str] = []
    for change in plan.changes:
        if change.kind not in seen:
            seen.append(change.kind)
    return seen


def _table(plan: Plan) -> list[str]:
    rows = ["| kind | " + " | ".join(f"{ICON[a]} {a}" for a in ACTIONS) + " |",
            "|---|" + "---:|" * len(ACTIONS)]
    for kind in _kinds(plan):
        counts = [sum(1 for c in plan.changes if c.kind == kind and c.action == a) for a in ACTIONS]
        rows.append(f"| {kind} | " + " | ".join(str(n) for n in counts) + " |")
    return [*rows, ""]


def _details(plan: Plan, kind: str) -> str:
    parts = []
    for change in (c for c in plan.changes if c.kind == kind):
        body = render_change(change, PLAIN).replace("```", "ʼʼʼ")
        summary = f"{ICON[change.action]} <code>{change.action}</code> {_escape(change.id)}"
        parts.append(f"<details><summary>{summary}</summary>\n\n```diff\n{body}```\n\n</details>\n")
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
