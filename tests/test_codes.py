"""The code registry and docs/RULES.md agree, and codes are well-formed and unique."""

from __future__ import annotations

import re

from reconciler.validate.codes import CODES
from tests.conftest import ROOT


def test_every_code_is_documented_and_nothing_else() -> None:
    text = (ROOT / "docs" / "RULES.md").read_text()
    rows = dict(re.findall(r"^\| (RC\d{3}) \| `([a-z0-9-]+)` \|", text, re.MULTILINE))
    assert rows == {code: c.name for code, c in CODES.items()}


def test_codes_are_well_formed_and_names_unique() -> None:
    assert all(re.fullmatch(r"RC[1-6]\d\d", code) for code in CODES)
    names = [c.name for c in CODES.values()]
    assert len(names) == len(set(names))
    assert {c.severity for c in CODES.values()} <= {"error", "warning"}
