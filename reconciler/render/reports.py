"""Diagnostics as the code-review reports of CI systems: SARIF 2.1.0 (GitHub code scanning) and
GitLab's Code Quality report. Both on stdout, both with the file paths CI expects: relative to
the working directory (the repository root in CI), `/`-separated, no leading `./`."""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from reconciler.diagnostics import ERROR, Diagnostic

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/your-org/reconciler"


def report_path(file: str) -> str:
    """`./providers/a.yaml` -> `providers/a.yaml`; an absolute path below the working directory
    becomes relative to it; anything else stays as it is (normalised)."""
    path = os.path.normpath(file)
    if os.path.isabs(path):
        try:
            relative = os.path.relpath(path)
        except ValueError:  # another drive (Windows)
            return PurePath(path).as_posix()
        if not relative.startswith(".."):
            path = relative
    return PurePath(path).as_posix()


def fingerprints(diagnostics: list[Diagnostic]) -> list[str]:
    """A stable identity per finding: the file, the code, the field and the message, not the line,
    so a finding keeps its identity when lines above it move. Identical findings are numbered."""
    seen: dict[str, int] = {}
    out = []
    for d in diagnostics:
        base = "\0".join((report_path(d.file), d.code, d.path, d.message))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(hashlib.sha256(f"{base}\0{n}".encode()).hexdigest())
    return out


def render_gitlab(diagnostics: list[Diagnostic]) -> list[dict[str, Any]]:
    """GitLab Code Quality: a list of issues (`artifacts:reports:codequality`)."""
    return [
        {
            "type": "issue",
            "description": f"{d.code}: {d.message}",
            "check_name": d.code,
            "categories": ["Bug Risk"] if d.severity == ERROR else ["Style"],
            "fingerprint": fingerprint,
            "severity": "major" if d.severity == ERROR else "minor",
            "location": {"path": report_path(d.file), "lines": {"begin": max(d.line, 1)}},
        }
        for d, fingerprint in zip(diagnostics, fingerprints(diagnostics), strict=True)
    ]


def _uri(path: str) -> str:
    if os.path.isabs(path):
        return PurePath(path).as_uri()
    return quote(path, safe="/")


def render_sarif(diagnostics: list[Diagnostic], version: str) -> dict[str, Any]:
    """One SARIF 2.1.0 run: the rules that occur (from the code registry), one result each."""
    from reconciler.validate.codes import CODES

    used = sorted({d.code for d in diagnostics})
    rules = []
    for code in used:
        known = CODES.get(code)
        rule: dict[str, Any] = {"id": code}
        if known is not None:
            rule.update(name=known.name, shortDescription={"text": known.summary},
                        defaultConfiguration={"level": "error" if known.severity == ERROR else "warning"})
        rules.append(rule)
    index = {code: i for i, code in enumerate(used)}
    results = []
    for d, fingerprint in zip(diagnostics, fingerprints(diagnostics), strict=True):
        location: dict[str, Any] = {"artifactLocation": {"uri": _uri(report_path(d.file))}}
        if not os.path.isabs(report_path(d.file)):
            location["artifactLocation"]["uriBaseId"] = "%SRCROOT%"
        if d.line >= 1:
            location["region"] = {"startLine": d.line, "startColumn": max(d.column, 1)}
        results.append({
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": "error" if d.severity == ERROR else "warning",
            "message": {"text": d.message},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {"reconcilerFinding/v1": fingerprint},
        })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "reconciler", "version": version, "semanticVersion": version,
                                "informationUri": INFORMATION_URI, "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def render_validation(result: Any, fmt: str, strict: bool, quiet: bool, style: Any) -> str:
    """What `validate --format F` writes to stdout: the diagnostics, in every format (the summary
    line goes to stderr). Text with `quiet` keeps only those that fail the run."""
    from reconciler import __version__
    from reconciler.render import to_json_text

    if fmt == "text":
        from reconciler.render.text import render_diagnostics

        failing = [d for d in result.diagnostics if strict or d.severity == ERROR]
        return render_diagnostics(failing if quiet else result.diagnostics, style, result.source_lookup())
    if fmt == "github":
        from reconciler.render.github import render_annotations

        return render_annotations(result.diagnostics)
    if fmt == "sarif":
        return to_json_text(render_sarif(result.diagnostics, __version__))
    if fmt == "gitlab":
        return to_json_text(render_gitlab(result.diagnostics))
    from reconciler.plan import FORMAT_VERSION

    return to_json_text({
        "format_version": FORMAT_VERSION,
        "valid": result.ok(strict),
        "files": result.files,
        "documents": len(result.documents),
        "summary": {"errors": result.errors, "warnings": result.warnings},
        "diagnostics": [d.to_dict() for d in result.diagnostics],
    })

