"""Release hygiene: the licence in the wheel, the changelog and security policy, every pinned
version in the docs and examples equal to the package version, and psycopg as an extra."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reconciler import __version__
from tests.conftest import EXAMPLES, ROOT, run_cli

# Places a user copies an install line or a pre-commit rev from.
PINNED_FILES = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "SECURITY.md", ROOT / ".pre-commit-hooks.yaml",
                *sorted((ROOT / "docs").glob("*.md")),
                EXAMPLES / ".github" / "workflows" / "reconciler.yml", EXAMPLES / ".gitlab-ci.yml",
                EXAMPLES / ".pre-commit-config.yaml", EXAMPLES / "ci" / "README.md"]
# `rev: v1.2.3`, `reconciler@v1.2.3`, `reconciler==1.2.3`, `reconciler[postgres]==1.2.3`
PIN = re.compile(r"(?:\brev:\s*|reconciler(?:\[[a-z,]+\])?(?:==|@v)|/reconciler@v)v?(\d+\.\d+\.\d+\S*?)\b")


def pins(text: str) -> list[str]:
    return [m.group(1) for m in PIN.finditer(text)]


def test_pin_pattern_finds_every_form() -> None:
    text = ("rev: v9.9.9\nreconciler @ git+https://github.com/o/reconciler@v1.2.3\n"
            "pip install reconciler==2.0.0 'reconciler[postgres]==3.1.4'\n")
    assert pins(text) == ["9.9.9", "1.2.3", "2.0.0", "3.1.4"]


def test_every_pinned_version_is_the_package_version() -> None:
    found: dict[str, list[str]] = {}
    for path in PINNED_FILES:
        for version in pins(path.read_text(encoding="utf-8")):
            found.setdefault(version, []).append(str(path.relative_to(ROOT)))
    wrong = {v: files for v, files in found.items() if v != __version__}
    assert not wrong, f"pinned versions other than the package's {__version__}: {wrong} (docs/RELEASING.md)"
    places = set(found.get(__version__, []))
    for must in ("README.md", "docs/CI.md", "examples/.pre-commit-config.yaml", "examples/.gitlab-ci.yml",
                 "examples/.github/workflows/reconciler.yml", "examples/ci/README.md"):
        assert must in places, f"{must} pins no version"


def test_changelog_security_and_releasing_documents() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog
    sections = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert sections and sections[0] in ("Unreleased", __version__), sections
    for heading in re.findall(r"^### (.+)$", changelog, re.MULTILINE):
        assert heading in {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, heading
    security = (ROOT / "SECURITY.md").read_text()
    assert "Reporting a vulnerability" in security and "never" in security.lower()
    releasing = (ROOT / "docs" / "RELEASING.md").read_text()
    assert "git tag -a v" in releasing and "CHANGELOG.md" in releasing and "__version__" in releasing
    readme = (ROOT / "README.md").read_text()
    for link in ("CHANGELOG.md", "SECURITY.md", "LICENSE", "docs/RELEASING.md"):
        assert f"]({link})" in readme, link
    assert "pipx install 'reconciler[postgres] @" in readme and "uv tool install 'reconciler" in readme


def test_wheel_ships_the_licence_and_the_schemas_and_psycopg_is_an_extra(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    result = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob(f"reconciler-{__version__}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"reconciler-{__version__}.dist-info"
        assert archive.read(f"{dist_info}/licenses/LICENSE").decode() == licence
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "reconciler/schemas/provider.schema.json" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: postgres" in metadata
    psycopg = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: psycopg")]
    assert psycopg and all("extra ==" in line for line in psycopg), psycopg
    assert any("extra == 'postgres'" in line or 'extra == "postgres"' in line for line in psycopg)


BLOCK_PSYCOPG = '''
import sys

class _NoPsycopg:
    """As if psycopg were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith(("psycopg.", "psycopg_")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoPsycopg())
'''


def test_postgresql_store_without_the_extra_names_the_extra(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_PSYCOPG)
    env = {"PYTHONPATH": f"{site}:{ROOT}"}
    probe = subprocess.run([sys.executable, "-c", "import psycopg"], env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'psycopg'" in probe.stderr  # the block works
    dsn = "postgresql://reconciler:hunter2-canary@127.0.0.1:9/none"
    for args in (["plan", str(EXAMPLES), "--store", dsn], ["history", "--store", dsn]):
        result = run_cli(*args, env=env)
        assert result.returncode == 1, result.stderr
        assert "reconciler[postgres]" in result.stderr and "psycopg" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "hunter2-canary" not in result.stderr + result.stdout
    # what needs no PostgreSQL still works without the driver
    assert run_cli("validate", str(EXAMPLES), "-q", env=env).returncode == 0
    assert run_cli("plan", str(EXAMPLES), "-q", "--store", f"sqlite:///{tmp_path / 's.db'}", env=env).returncode == 0
