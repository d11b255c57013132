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


# --- hypothesis profiles (tests/test_properties.py) ---------------------------------------------
# "ci" (default): modest and deterministic. RECONCILER_LONG_TESTS=1 loads "long": 2,000 examples
# instead of 300, fresh ones each run (a failure prints the blob that reproduces it).
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("long", max_examples=2000, deadline=None, derandomize=False, print_blob=True)
_hypothesis_settings.load_profile("long" if os.environ.get("RECONCILER_LONG_TESTS") == "1" else "ci")


def pytest_configure(config: pytest.Config) -> None:
    # On a failure, hypothesis writes a patch with `black`, whose import warns; under
    # filterwarnings=error that would turn a readable failure into an INTERNALERROR.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
