"""GitHub workflow annotations: `::error file=…,line=…,col=…,title=…::message`."""

from __future__ import annotations

from reconciler.diagnostics import Diagnostic
from reconciler.render.reports import report_path


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_annotations(diagnostics: list[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        level = "error" if d.severity == "error" else "warning"
        # GitHub matches `file` to the pull request's paths: `providers/a.yaml`, not `./providers/a.yaml`
        props = f"file={_property(report_path(d.file))}"
        if d.line > 0:
            props += f",line={d.line},col={d.column}"
        props += f",title={_property(d.code)}"
        lines.append(f"::{level} {props}::{_data(d.message)}")
    return "".join(line + "\n" for line in lines)
