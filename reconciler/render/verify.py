"""`verify`'s report for people (a verdict table) and for a pull-request comment (Markdown)."""

from __future__ import annotations

from reconciler.render import Style
from reconciler.verify.report import OK, SKIPPED, VerifyReport

COLOR = {OK: "green", SKIPPED: "yellow"}


def _rows(report: VerifyReport) -> list[tuple[str, str, str, str, str]]:
    """(provider, type, key, verdict, what) per key; one row for a provider without keys."""
    rows = []
    for p in report.providers:
        if not p.keys:
            rows.append((p.name, p.type, "-", p.verdict, p.message))
        for k in p.keys:
            key = k.label if k.ref is None else f"{k.label} {k.ref}"
            rows.append((p.name, p.type, key, k.verdict, k.message))
    return rows


def render_verify_text(report: VerifyReport, style: Style) -> str:
    rows = _rows(report)
    heads = ("PROVIDER", "TYPE", "KEY", "VERDICT")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + "  DETAIL\n"]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        verdict = style(row[3].ljust(widths[3]), COLOR.get(row[3], "red"))
        out.append("  ".join([*cells, verdict, row[4]]) + "\n")
    out.append("\n" + summary_line(report) + "\n")
    return "".join(out)


def summary_line(report: VerifyReport) -> str:
    where = f"through {report.through}" if report.through else "against the upstreams"
    counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n)
    errors = sum(d.severity == "error" for d in report.diagnostics)
    warnings = len(report.diagnostics) - errors
    text = (f"Verified {len(report.providers)} provider(s) {where} in {report.seconds:.1f} s: {counts or 'none'}; "
            f"{report.models_checked} model id(s) looked up; {errors} error(s), {warnings} warning(s).")
    if report.live:
        text += f" --live sent {report.completions} billed completion(s)."
    return text


def render_verify_markdown(report: VerifyReport) -> str:
    mark = "✅" if report.ok else "❌"
    lines = [f"### {mark} reconciler verify", "", summary_line(report), "",
             "| provider | type | key | verdict | detail |", "|---|---|---|---|---|"]
    for name, ptype, key, verdict, what in _rows(report):
        lines.append(f"| `{name}` | {ptype} | {_cell(key)} | **{verdict}** | {_cell(what)} |")
    if report.diagnostics:
        lines += ["", "| where | severity | code | message |", "|---|---|---|---|"]
        for d in report.diagnostics:
            lines.append(f"| `{_cell(d.file)}:{d.line}` | {d.severity} | {d.code} | {_cell(d.message)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")
