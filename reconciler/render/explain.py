"""Text and Markdown for `explain` (what a developer gets) and `cost` (what a change costs)."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.cost import CostReport, Totals, dollars
from reconciler.explain import Explanation
from reconciler.prices import PRICE_FIELDS
from reconciler.render import Style

SIDE = {"manifests": "what the manifests say will happen", "store": "what happens now, in the store"}


def render_explanation_text(explanations: Sequence[Explanation], style: Style) -> str:
    out: list[str] = []
    for e in explanations:
        who = f" for user {e.user}" if e.user else ""
        out.append(style(f"Organization {e.organization}{who}: {SIDE[e.side]}", "bold") + "\n")
        if e.personal_overrides is not None:
            out.append(f"  personal overrides: {'allowed' if e.personal_overrides else 'not allowed'}\n")
        out.append("\n" + style("Models per context", "bold") + "\n")
        for c in e.contexts:
            result = style(c.model, "green") if c.model else style("no model", "red")
            out.append(f"  {c.context}: {result}\n")
            for layer in c.layers:
                mark = "->" if layer.used else "  "
                held = f" {layer.held}:" if layer.held else ""
                out.append(f"    {mark} {layer.name}:{held} {layer.reason}\n")
            if c.note:
                out.append(f"       note: {c.note}\n")
        out.append("\n" + style("Credentials per provider", "bold") + "\n")
        for cr in e.credentials:
            state = "" if cr.enabled else " (disabled)"
            keys = f" [{', '.join(cr.central_keys)}]" if cr.central_keys else ""
            verdict = style("available", "green") if cr.available else style("unavailable", "red")
            out.append(f"  {cr.provider} ({cr.type}){state}: {verdict}: {cr.source}{keys}\n")
        out.append("\n" + style("Price per model (USD per 1M tokens)", "bold") + "\n")
        for p in e.prices:
            values = ", ".join(f"{f} {p.prices[f] if p.prices[f] is not None else '-'}" for f in PRICE_FIELDS)
            out.append(f"  {p.model}: {values}  ({p.source})\n")
        out.append("\n")
    return "".join(out)


def render_explanation_markdown(explanations: Sequence[Explanation]) -> str:
    out: list[str] = []
    for e in explanations:
        who = f" for `{e.user}`" if e.user else ""
        out.append(f"### Organization `{e.organization}`{who}: {SIDE[e.side]}\n\n")
        out.append("| context | model | why |\n|---|---|---|\n")
        for c in e.contexts:
            used = next((x for x in c.layers if x.used), None)
            why = used.reason if used else "; ".join(x.reason for x in c.layers)
            if c.note:
                why += f" ({c.note})"
            out.append(f"| {c.context} | {_cell(c.model or 'no model')} | {_cell(why)} |\n")
        out.append("\n| provider | credentials | available |\n|---|---|---|\n")
        for cr in e.credentials:
            out.append(f"| {_cell(cr.provider)} | {_cell(cr.source)} | {'yes' if cr.available else 'no'} |\n")
        out.append("\n| model | input | output | cache read | cache write | price from |\n|---|---|---|---|---|---|\n")
        for p in e.prices:
            cells = " | ".join(p.prices[f] if p.prices[f] is not None else "-" for f in PRICE_FIELDS)
            out.append(f"| {_cell(p.model)} | {cells} | {_cell(p.source)} |\n")
        out.append("\n")
    return "".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_cost_text(report: CostReport, style: Style) -> str:
    if report.note:
        return f"{report.note}\n"
    out = [style(f"Recorded usage {report.since} .. {report.until}", "bold") + "\n"]
    total = report.totals()
    out.append(f"  {_headline(total)}\n")
    for org, totals in report.organizations().items():
        out.append(f"  organization {org}: {_headline(totals)}\n")
    out.append("\n" + style("Per model", "bold") + "\n")
    for line in report.lines:
        one = report.totals([line])
        out.append(f"  {line.organization}/{line.provider}/{line.model}: {_headline(one)}\n")
    if total.unpriced_today or total.unpriced_proposed:
        out.append("\n" + style("warning", "yellow") + f": {total.unpriced_today:,} tokens have no price today and "
                   f"{total.unpriced_proposed:,} would have none under this change: costed as zero\n")
    return "".join(out)


def render_cost_markdown(report: CostReport) -> str:
    out = ["### Cost of this change\n\n"]
    if report.note:
        return out[0] + report.note + "\n"
    total = report.totals()
    out.append(f"Recorded usage {report.since} .. {report.until}: {_headline(total)}\n\n")
    out.append("| scope | recorded | at today's prices | under this change | change |\n|---|---|---|---|---|\n")
    rows = [("**total**", total)] + [(f"organization `{k}`", v) for k, v in report.organizations().items()]
    rows += [(f"`{x.organization}/{x.provider}/{x.model}`", report.totals([x])) for x in report.lines]
    for label, t in rows:
        out.append(f"| {label} | {dollars(t.recorded)} | {dollars(t.today)} | {dollars(t.proposed)} | {_delta(t)} |\n")
    if total.unpriced_today or total.unpriced_proposed:
        out.append(f"\n> [!WARNING]\n> {total.unpriced_today:,} tokens have no price today, "
                   f"{total.unpriced_proposed:,} under this change: that usage is costed as zero.\n")
    return "".join(out)


def _headline(t: Totals) -> str:
    return f"{dollars(t.today)} at today's prices, {dollars(t.proposed)} under this change ({_delta(t)})"


def _delta(t: Totals) -> str:
    sign = "+" if t.delta >= 0 else "-"
    percent = t.percent()
    share = "" if percent is None else f", {'+' if percent >= 0 else ''}{percent}%"
    return f"{sign}{dollars(abs(t.delta))}{share}"
