"""`reconciler validate` and `reconciler schema` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, ROOT, run_cli

BAD_URL = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: proxy
spec:
  type: openai-compat
  base_url: https://llm.example.com/v1/chat/completions
"""
PLAINTEXT = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: openai
spec:
  type: openai
  api_keys:
    - sk-canary-plaintext-0123456789abcdef
"""
WARN_ONLY = """apiVersion: reconciler/v1
kind: Provider
metadata:
  name: proxy
spec:
  type: openai-compat
  base_url: http://llm.example.com/v1
"""


def test_examples_validate_clean() -> None:
    result = run_cli("validate", str(EXAMPLES))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "All manifests are valid" in result.stderr


def test_text_diagnostics_point_at_file_line_column(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(BAD_URL)
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1
    assert f"{bad}:7:13: error RC307 " in result.stdout
    assert "\x1b[" not in result.stderr  # no colour when not on a TTY


def test_json_goes_to_stdout_the_summary_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(BAD_URL)
    result = run_cli("validate", str(tmp_path), "--format", "json")
    assert result.returncode == 1
    assert result.stderr == "1 error, 0 warnings in 1 file.\n"
    data = json.loads(result.stdout)
    assert data["format_version"] == "1" and data["valid"] is False
    (diag,) = data["diagnostics"]
    assert set(diag) == {"file", "line", "column", "severity", "code", "path", "message"}
    assert (diag["code"], diag["line"], diag["column"], diag["path"]) == ("RC307", 7, 13, "spec.base_url")


def test_github_annotations(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(BAD_URL)
    result = run_cli("validate", str(tmp_path), "--format", "github")
    assert result.returncode == 1
    assert result.stdout.startswith(f"::error file={tmp_path}/p.yaml,line=7,col=13,title=RC307::")


def test_plaintext_secret_is_an_error_that_does_not_repeat_it(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PLAINTEXT)
    for fmt in ("text", "json", "github"):
        result = run_cli("validate", str(tmp_path), "--format", fmt)
        assert result.returncode == 1
        assert "RC202" in result.stdout + result.stderr
        assert "sk-canary" not in result.stdout + result.stderr


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(WARN_ONLY)
    assert run_cli("validate", str(tmp_path)).returncode == 0
    strict = run_cli("validate", str(tmp_path), "--strict")
    assert strict.returncode == 1 and "RC304" in strict.stdout
    assert run_cli("validate", str(tmp_path), env={"RECONCILER_STRICT": "1"}).returncode == 1


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: [\n")
    (tmp_path / "b.yaml").write_text(BAD_URL)
    result = run_cli("validate", str(tmp_path), "--format", "json")
    assert sorted(d["code"] for d in json.loads(result.stdout)["diagnostics"]) == ["RC105", "RC307"]


def test_usage_errors_exit_1_never_2(tmp_path: Path) -> None:
    for args in (("validate", "--format", "xml"), ("frobnicate",), ("plan", "--max-deletes", "-1"),
                 ("plan", str(tmp_path), "--select", "team in (a")):
        result = run_cli(*args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope"))
    assert result.returncode == 1 and "RC101" in result.stdout


def test_schema_command_prints_and_writes(tmp_path: Path) -> None:
    printed = json.loads(run_cli("schema").stdout)
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    out = tmp_path / "s"
    assert run_cli("schema", "--out", str(out)).returncode == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["manifest.schema.json", "model.schema.json", "overrides.schema.json",
                       "pricecatalog.schema.json", "provider.schema.json", "settings.schema.json"]
    for name in written[1:]:
        assert json.loads((out / name).read_text()) == json.loads((ROOT / "schemas" / name).read_text())


def test_help_does_not_import_heavy_libraries() -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "reconciler", "--help"],
                            capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "click" in imported and "reconciler" in imported  # the check sees real imports
    heavy = {"jsonschema", "fastjsonschema", "httpx", "psycopg", "cryptography", "deepdiff", "yaml"}
    assert imported & heavy == set()
    assert "validate" in result.stdout and "plan" in result.stdout and "apply" in result.stdout


def test_python_dash_m_and_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("reconciler, version ")
