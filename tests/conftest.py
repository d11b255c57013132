"""Shared fixtures. Store fixtures live in tests/storefixtures.py, the fake Coder in tests/fakecoder/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
KEY_A = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, base64 (test only)
KEY_B = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None,
            stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m reconciler ARGS` in a subprocess: the real entry point, the real exit code."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, input=stdin, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
