"""Markdown for a sticky pull-request comment.

Summary first (the Terraform-style count line and a table per kind), then what
a reviewer must not miss (a refusal, warnings such as "cannot be deleted",
secrets that plan could not verify), then one collapsed `<details>` block per
object with a coloured diff. A hidden marker (`MARKER`) lets a workflow find
and update its own comment instead of adding one per push.

GitHub limits a comment to 65,536 characters. Sizes are counted here in UTF-8
bytes, which is never less than any way of counting characters, and a margin
is left for what the workflow appends (a link to the run). When the details
do not fit, as many objects as fit keep their details, the rest are listed one
line each (as far as that fits too), and a note points to the full plan kept
as the CI run's artifact. Rendering never fails for size.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.changes import CREATE, DELETE, REPLACE, UPDATE, Change, FieldDiff
from reconciler.diagnostics import Diagnostic
from reconciler.lastwrite import provenance_line
from reconciler.plan import ACTIONS, Plan
from reconciler.render.text import DERIVED, _value, derived_fields, is_derived, not_selected_note, plan_summary

MARKER = "<!-- reconciler-plan -->"
COMMENT_LIMIT = 65_536  # GitHub's limit for a comment body
HEADROOM = 1_024  # left for what a workflow appends to the comment
ICON = {CREATE: "🟢", UPDATE: "🟡", REPLACE: "🟠", DELETE: "🔴"}
LIST_CAP = 20  # warnings, diagnostics or secret references shown before "… and N more"
UNMANAGED_CAP = 50
LINE_CAP = 400  # characters of one diff line; longer values are cut in the comment only
NOTE_RESERVE = 700  # bytes kept free for the truncation note and the wrapper of the short list


def render_plan_markdown(
    plan: Plan,
    diagnostics: Sequence[Diagnostic] = (),
    title: str = "reconciler plan",
    limit: int = COMMENT_LIMIT - HEADROOM,
) -> str:
    """The comment body, at most `limit` UTF-8 bytes long."""
    head = _head(plan, diagnostics, title)
    blocks = _detail_blocks(plan)
    if _size(head) + sum(_size(b) for b in blocks) <= limit:
        return head + "".join(blocks)
    return _truncated(plan, head, blocks, limit)


def _head(plan: Plan, diagnostics: Sequence[Diagnostic], title: str) -> str:
    out = [MARKER, f"### {title}", ""]
    if plan.empty:
        if plan.unmanaged:
            n = len(plan.unmanaged)
            out += [f"⚠️ **No changes to apply**, but {n} object{'s' if n != 1 else ''} in the store "
                    f"{'are' if n != 1 else 'is'} not in the manifests (left alone; `--prune` deletes them).", ""]
        elif plan.options.select:
            out += ["✅ **No changes.** The selected objects in the store match the manifests "
                    f"({_inline(not_selected_note(plan))}).", ""]
        else:
            out += ["✅ **No changes.** The store matches the manifests.", ""]
    else:
        out += [f"**{plan_summary(plan)}**", ""]
    if plan.refusal:
        first, *more = plan.refusal.splitlines()
        out += _callout("CAUTION", f"**apply would refuse this plan:** {_inline(first)}", [_inline(m) for m in more])
    if plan.notes:
        out += _callout("WARNING", "**Warnings:**", [_inline(n) for n in plan.notes])
    warnings = [d for d in diagnostics if d.severity != "error"]
    if warnings:
        lines = [f"{_code(f'{d.file}:{d.line}' if d.line else d.file)} {d.code} {_inline(d.message)}" for d in warnings]
        out += _callout("WARNING", "**Validation warnings:**", lines)
    if plan.unverifiable:
        refs = ", ".join(_capped([_code(r) for r in sorted(set(plan.unverifiable))], LIST_CAP))
        out += _callout("NOTE", f"**Secrets not verifiable at plan time** (not available to this job): {refs}. "
                        "They are planned as unchanged; apply reads them.")
    if not plan.empty:
        out += _table(plan)
    if plan.unmanaged:
        out += _unmanaged(plan.unmanaged)
    return "\n".join(out) + "\n"


def _callout(kind: str, text: str, items: list[str] | None = None) -> list[str]:
    """A GitHub alert block: a line of text, then a list."""
    return [f"> [!{kind}]", f"> {text}", *(f"> - {item}" for item in _capped(items or [], LIST_CAP)), ""]


def _capped(items: list[str], cap: int) -> list[str]:
    if len(items) <= cap:
        return items
    return [*items[:cap], f"… and {len(items) - cap} more (see the full plan)"]


def _table(plan: Plan) -> list[str]:
    counts: dict[str, dict[str, int]] = {}
    for change in plan.changes:
        row = counts.setdefault(change.kind, dict.fromkeys(ACTIONS, 0))
        row[change.action] += 1
    rows = ["| kind | " + " | ".join(f"{ICON[a]} {a}" for a in ACTIONS) + " |",
            "|---|" + "---:|" * len(ACTIONS)]
    rows += [f"| {kind} | " + " | ".join(str(row[a]) for a in ACTIONS) + " |" for kind, row in counts.items()]
    return [*rows, ""]


def _unmanaged(ids: list[str]) -> list[str]:
    n = len(ids)
    summary = (f"{n} unmanaged object{'s' if n != 1 else ''} in the store, named by no manifest: "
               "left alone (<code>--prune</code> would delete them)")
    items = _capped([_code(i) for i in sorted(ids)], UNMANAGED_CAP)
    return ["<details><summary>" + summary + "</summary>", "", *(f"- {i}" for i in items), "",
            "</details>", ""]


def _detail_blocks(plan: Plan) -> list[str]:
    """One collapsed block per change; a kind heading before the first change of each run of a kind."""
    blocks: list[str] = []
    previous = ""
    for change in plan.changes:
        heading = f"#### {change.kind}\n\n" if change.kind != previous else ""
        previous = change.kind
        blocks.append(heading + _details(change, _written(plan, change), derived_fields(plan, change),
                                         provenance_line(plan, change.id)))
    return blocks


def _written(plan: Plan, change: Change) -> str:
    """Where the author wrote it, for a summary line: `Model <b>claude-sonnet</b> (models/a.yaml:14)`."""
    source = plan.sources.get(change.id)
    if source is None:
        return ""
    kind, _, name = source["manifest"].partition("/")
    detail = f" {_html(source['detail'])}" if source.get("detail") else ""
    return f"{_html(kind)} <b>{_html(name)}</b>{detail} ({_html(source['file'])}:{source['line']}) "


def _details(change: Change, written: str = "", derived: frozenset[str] = frozenset(), last: str = "") -> str:
    summary = f"{ICON[change.action]} <b>{change.action}</b> {written}<code>{_html(change.id)}</code>"
    if change.reason:
        summary += f": {_inline(change.reason)}"
    lines = _diff_lines(change, derived) + ([f"# {last}"] if last else [])
    body = "\n".join(_one_line(line) for line in lines).replace("```", "ʼʼʼ")
    return f"<details><summary>{summary}</summary>\n\n```diff\n{body}\n```\n\n</details>\n\n"


def _diff_lines(change: Change, derived: frozenset[str] = frozenset()) -> list[str]:
    lines: list[str] = []
    if change.reason:
        lines.append(f"# {change.reason}")
    for d in change.field_diffs():
        marked = is_derived(d, derived)
        lines += [line + DERIVED if marked else line for line in _field_lines(d, change.action)]
    if change.needs:
        lines.append(f"# apply reads {', '.join(change.needs)}")
    return lines or ["# no field differs"]


def _field_lines(d: FieldDiff, action: str) -> list[str]:
    if d.sensitive:
        symbol = {CREATE: "+", DELETE: "-"}.get(action, "!")
        return [f"{symbol} {d.path}: {d.note}"]
    if action == DELETE:
        return [f"- {d.path}: {_value(d.before)}"]
    lines = []
    if d.before is not None and action != CREATE:
        lines.append(f"- {d.path}: {_value(d.before)}")
    if d.after is not None:
        lines.append(f"+ {d.path}: {_value(d.after)}")
    return lines


def _compact(plan: Plan, change: Change) -> str:
    source = plan.sources.get(change.id)
    written = f"{source['manifest']} ({_code(source['file'] + ':' + str(source['line']))}) " if source else ""
    return f"- {ICON[change.action]} {change.action} {_inline(written)}{_code(change.id)}\n"


def _truncated(plan: Plan, head: str, blocks: list[str], limit: int) -> str:
    changes = plan.changes
    short = [_compact(plan, c) for c in changes]
    short_cap = limit // 4  # the one-line list of undetailed changes never crowds out all details
    rest = [0] * (len(changes) + 1)  # rest[i]: bytes of the one-line list of changes i..n
    for i in range(len(changes) - 1, -1, -1):
        rest[i] = rest[i + 1] + _size(short[i])
    used = _size(head) + NOTE_RESERVE
    shown: list[str] = []
    for i, block in enumerate(blocks):
        if used + _size(block) + min(rest[i + 1], short_cap) > limit:
            break
        shown.append(block)
        used += _size(block)
    detailed = len(shown)
    listed: list[str] = []
    for line in short[detailed:]:
        if used + _size(line) > limit:
            break
        listed.append(line)
        used += _size(line)
    left = len(changes) - detailed - len(listed)
    note = _callout("NOTE", (
        f"**This comment shows the details of {detailed} of {len(changes)} changes**: GitHub limits "
        f"a comment to {COMMENT_LIMIT:,} characters. The full plan is kept with the CI run as its "
        "plan artifact (the file `reconciler plan --out` writes); `reconciler plan` shows it too."
    ))
    out = head + "\n".join(note) + "\n" + "".join(shown)
    if listed or left:
        more = f"\n… and {left} more, in the plan artifact.\n" if left else ""
        out += (f"<details><summary>{len(changes) - detailed} more changes, without details</summary>"
                f"\n\n{''.join(listed)}{more}\n</details>\n")
    return out


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _one_line(line: str) -> str:
    """A line of a code block that cannot start another line (and so never closes the fence)."""
    line = line.replace("\r", " ").replace("\n", " ")
    return line if len(line) <= LINE_CAP else line[: LINE_CAP - 1] + "…"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """Prose for one Markdown line: no line breaks, no HTML."""
    return _html(" ".join(text.split()))


def _code(text: str) -> str:
    """A code span on one line (entities would show literally inside it, so no escaping)."""
    return "`" + " ".join(text.split()).replace("`", "'") + "`"
