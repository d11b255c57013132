"""The offending source line under a text diagnostic, with a caret under its column:

    providers/openai.yaml:16:13: error RC307 base_url ends in /models; …
       16 |   base_url: https://api.openai.com/v1/models
          |             ^

A line is shown only when it is plainly a field that holds no secret: a `key: value` line whose
key and document path name no secret position, with no long token of mixed letters and digits
(what keys look like), no user-info or escapes; never for a diagnostic whose message keeps a
value back, never for a line too long to read. The hostile corpus's canaries check it."""

from __future__ import annotations

import re
from collections.abc import Callable

from reconciler.diagnostics import Diagnostic
from reconciler.render import Style

MAX_WIDTH = 160
_WITHHELD = ("RC202", "RC302", "RC303")  # a plaintext secret; a URL with credentials, a query
_FIELD_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*):(?:\s|$)")  # `key: value`, not a list item or flow
_SECRETISH = re.compile(r"key|token|secret|passw|auth|credential|header|cookie|signature", re.IGNORECASE)
_TOKENS = re.compile(r"[^\s/,:?&=#@\"'{}\[\]()]+")


def _may_hold_a_secret(d: Diagnostic, line: str) -> bool:
    """True unless the line is plainly a field that holds no secret: shown lines are allowed, not
    filtered, since a secret can look like anything."""
    if d.code in _WITHHELD or "not shown" in d.message or "not repeated" in d.message:
        return True
    field = _FIELD_LINE.match(line.strip())
    if field is None or _SECRETISH.search(field.group(1)) or _SECRETISH.search(d.path):
        return True
    if any(c in line for c in "@%\\") or "\\x" in line:
        return True
    return any(len(token) >= 12 and any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
               for token in _TOKENS.findall(line))


def excerpt(d: Diagnostic, source: Callable[[str], str | None], style: Style) -> str:
    if d.line < 1:
        return ""
    text = source(d.file)
    if text is None:
        return ""
    lines = text.splitlines()
    if d.line > len(lines):
        return ""
    line = lines[d.line - 1]
    column = max(d.column, 1)
    if len(line) > MAX_WIDTH or column > len(line) + 1 or _may_hold_a_secret(d, line):
        return ""
    number = str(d.line)
    pad = "".join(c if c == "\t" else " " for c in line[: column - 1])
    gutter = " " * (len(number) + 4)
    caret = style("^", "red" if d.severity == "error" else "yellow")
    return f"   {number} | {line}\n{gutter}| {pad}{caret}\n"
