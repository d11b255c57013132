"""Options the way CI passes them (RECONCILER_* variables), -q/-v, and progress on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import click
import pytest

from reconciler.cli import cli
from tests.cliharness import read_terminal
from tests.conftest import KEY_A, ROOT, run_cli

MANIFESTS = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: openai}
spec:
  type: openai
  api_keys: [{env: OPTIONS_TEST_KEY}]
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt}
spec:
  provider: openai
  model: gpt-5
  default: true
  context_limit: 400000
---
apiVersion: reconciler/v1
kind: Model
metadata: {name: gpt-mini}
spec:
  provider: openai
  model: gpt-5-mini
  context_limit: 400000
"""
WARNING_ONLY = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: proxy}
spec:
  type: openai-compat
  base_url: http://llm.example.com/v1
"""
ERROR = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: broken}
spec:
  type: openai-compat
  base_url: https://llm.example.com/v1/chat/completions
"""
OPTIONS_WITHOUT_ENV = {"help", "version"}


def all_commands() -> list[tuple[str, click.Command]]:
    assert isinstance(cli, click.Group)
    return [("reconciler", cli), *((f"reconciler {name}", cmd) for name, cmd in sorted(cli.commands.items()))]


def test_every_option_of_every_command_reads_a_reconciler_variable() -> None:
    missing = []
    for name, command in all_commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.name in OPTIONS_WITHOUT_ENV:
                continue
            envvar = param.envvar if isinstance(param.envvar, str) else None
            if not envvar or not envvar.startswith("RECONCILER_") or not param.show_envvar:
                missing.append(f"{name} {param.opts[-1]}")
    assert missing == []


def test_help_shows_each_variable() -> None:
    for name, command in all_commands():
        args = name.split()[1:]
        result = run_cli(*args, "--help")
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())  # help wraps lines
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in OPTIONS_WITHOUT_ENV:
                assert f"env var: {param.envvar}" in text, f"{name} --help lacks {param.envvar}"
        if name != "reconciler":
            assert "-q, --quiet" in text and "-v, --verbose" in text


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "all.yaml").write_text(MANIFESTS)
    return tmp_path


def env_for(repo: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "RECONCILER_ENCRYPTION_KEY": KEY_A, "OPTIONS_TEST_KEY": "sk-options-0123456789",
            "RECONCILER_STORE": f"sqlite:///{repo}/store.db", **extra}


def test_commands_take_their_options_from_the_environment(repo: Path) -> None:
    env = env_for(repo)
    result = run_cli("validate", "manifests", env={**env, "RECONCILER_VALIDATE_FORMAT": "json"}, cwd=repo)
    assert result.returncode == 0 and json.loads(result.stdout)["valid"] is True
    plan = run_cli("plan", "manifests", cwd=repo, env={
        **env, "RECONCILER_PLAN_FORMAT": "json", "RECONCILER_DETAILED_EXITCODE": "1", "RECONCILER_PLAN_OUT": "p.json"})
    assert plan.returncode == 2, plan.stderr
    assert json.loads(plan.stdout)["summary"]["create"] == 3 and (repo / "p.json").exists()
    applied = run_cli("apply", "p.json", cwd=repo, env={
        **env, "RECONCILER_APPLY_FORMAT": "json", "RECONCILER_REPORT": "r.json", "RECONCILER_LOCK_TIMEOUT": "5"})
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout) == json.loads((repo / "r.json").read_text())
    schema = run_cli("schema", cwd=repo, env={**env, "RECONCILER_SCHEMA_OUT": "schemas", "RECONCILER_QUIET": "1"})
    assert schema.returncode == 0 and schema.stderr == ""
    assert (repo / "schemas" / "manifest.schema.json").exists()
    kind = run_cli("schema", env={**env, "RECONCILER_SCHEMA_KIND": "Settings"})
    assert "Settings" in json.loads(kind.stdout)["title"]


def test_quiet_prints_only_errors(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT)}
    (tmp_path / "ok.yaml").write_text(MANIFESTS)
    for args in (["-q", "validate", str(tmp_path)], ["validate", "-q", str(tmp_path)]):  # before or after
        result = run_cli(*args, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (tmp_path / "warn.yaml").write_text(WARNING_ONLY)
    warned = run_cli("validate", "-q", str(tmp_path), env=env)
    assert (warned.returncode, warned.stderr) == (0, "")
    strict = run_cli("validate", "-q", "--strict", str(tmp_path), env=env)  # warnings are errors now
    assert strict.returncode == 1 and "warning RC" in strict.stdout
    (tmp_path / "bad.yaml").write_text(ERROR)
    failed = run_cli("validate", str(tmp_path), env={**env, "RECONCILER_QUIET": "1"})
    assert failed.returncode == 1
    assert "bad.yaml:6:13: error" in failed.stdout and "warning" not in failed.stdout
    assert "warn.yaml" not in failed.stderr and "1 error, 1 warning" in failed.stderr


def test_quiet_plan_and_apply_say_nothing_on_success_but_still_write_what_was_asked(repo: Path) -> None:
    env = env_for(repo)
    plan = run_cli("-q", "plan", "manifests", "--out", "p.json", env=env, cwd=repo)
    assert (plan.returncode, plan.stdout, plan.stderr) == (0, "", "") and (repo / "p.json").exists()
    markdown = run_cli("plan", "-q", "manifests", "--format", "markdown", env=env, cwd=repo)
    assert markdown.stdout.startswith("<!-- reconciler-plan -->")  # asked for: still printed
    applied = run_cli("apply", "-q", "manifests", "--report", "r.json", env=env, cwd=repo)
    assert (applied.returncode, applied.stdout, applied.stderr) == (0, "", "")
    assert json.loads((repo / "r.json").read_text())["summary"]["applied"] == 3
    (repo / "manifests" / "more.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: other}\n"
        "spec: {type: anthropic, api_keys: [{env: OPTIONS_UNSET_KEY}]}\n")
    failing = run_cli("apply", "-q", "manifests", env=env, cwd=repo)
    assert failing.returncode == 1 and "OPTIONS_UNSET_KEY is not set" in failing.stderr


def test_verbose_shows_the_store_and_timings(repo: Path) -> None:
    env = env_for(repo)
    plan = run_cli("plan", "-v", "manifests", env=env, cwd=repo)
    assert plan.returncode == 0, plan.stderr
    assert f"store: sqlite:///{repo}/store.db" in plan.stderr
    assert "read the store in" in plan.stderr and "validated and planned in" in plan.stderr
    assert "3 changes" in plan.stderr
    applied = run_cli("-v", "apply", "manifests", env=env, cwd=repo)
    assert applied.returncode == 0 and "applied in" in applied.stderr
    validated = run_cli("validate", "manifests", env={**env, "RECONCILER_VERBOSE": "1"}, cwd=repo)
    assert "validated 3 documents in 1 files in" in validated.stderr


def test_quiet_and_verbose_together_is_a_usage_error(repo: Path) -> None:
    result = run_cli("-q", "validate", "-v", "manifests", env=env_for(repo), cwd=repo)
    assert result.returncode == 1 and "--quiet and --verbose cannot be used together" in result.stderr


def run_on_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout piped); returns (code, stdout, what the terminal got)."""
    controller, terminal = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    process = subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=terminal, env={**full_env, "NO_COLOR": "1", **env})
    os.close(terminal)
    seen = read_terminal(controller, process)
    stdout, _ = process.communicate(timeout=30)
    return process.returncode, stdout.decode(), seen.decode()


def test_progress_on_a_terminal_counts_changes_and_clears_its_line(repo: Path) -> None:
    code, stdout, terminal = run_on_terminal(["apply", "manifests"], env_for(repo), repo)
    assert code == 0, terminal
    assert "applying 3 changes…" in terminal
    steps = [part for part in terminal.split("\r\x1b[K") if part.startswith("[")]
    assert steps == ["[1/3] create Provider/openai", "[2/3] create Model/default/openai/gpt-5",
                     "[3/3] create Model/default/openai/gpt-5-mini"]
    assert terminal.endswith("\r\x1b[K")  # the line is left clean for what follows
    assert "Apply complete: 3 applied" in stdout


def test_progress_is_quiet_off_a_terminal_and_with_q(repo: Path) -> None:
    piped = run_cli("apply", "manifests", env=env_for(repo), cwd=repo)
    assert piped.returncode == 0 and "[1/" not in piped.stderr and "\x1b[" not in piped.stderr
    (repo / "manifests" / "all.yaml").write_text(MANIFESTS.replace("context_limit: 400000", "context_limit: 300000"))
    code, _, terminal = run_on_terminal(["apply", "-q", "manifests"], env_for(repo), repo)
    assert code == 0 and terminal == ""
