"""Diagnostics: one problem found in the manifests, with its place and a stable code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem at `file:line:column`; `path` is the document path (`spec.base_url`). Line and
    column are 0 when the problem is the path itself (it does not exist, cannot be read)."""

    file: str
    line: int
    column: int
    severity: str
    code: str
    message: str
    path: str = ""

    @property
    def where(self) -> str:
        """`file:line:column`, or the file alone for a problem with the path itself (line 0)."""
        return f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "path": self.path,
            "message": self.message,
        }


def format_path(path: tuple[str | int, ...]) -> str:
    """`("spec", "api_keys", 0)` -> `spec.api_keys[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def sort_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.file, d.line, d.column, d.code, d.message))


def has_errors(diagnostics: list[Diagnostic], strict: bool = False) -> bool:
    return any(d.severity == ERROR or strict for d in diagnostics)
