"""Renderers: the only code that formats diagnostics, plans and reports for people or machines."""

from __future__ import annotations

import json
from typing import Any


def to_json_text(data: dict[str, Any] | list[Any]) -> str:
    """Stable JSON: sorted keys, so that golden files and diffs of outputs stay put."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class Style:
    """ANSI colour when enabled (a TTY without NO_COLOR); plain text otherwise."""

    CODES = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, color: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{self.CODES[color]}m{text}\x1b[0m"
