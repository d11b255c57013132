"""Interactive safety, as Terraform's: `apply` on a terminal shows the plan and applies only on "yes";
--auto-approve, a saved plan and any non-terminal (cron, CI) never ask. Run on a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cliharness import object_count, read_terminal
from tests.conftest import run_cli
from tests.storefixtures import ENV

MANIFEST = ("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: openai-like}\n"
            "spec: {type: openai-compat, base_url: 'https://llm.example.com/v1'}\n")
QUESTION = "Do you want to perform these actions?"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "p.yaml").write_text(MANIFEST)
    return tmp_path


def on_terminal(args: list[str], answer: str | None, cwd: Path) -> tuple[int, str]:
    """Run with stdin and stdout on a pseudo-terminal; type `answer` when the question shows."""
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    process = subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, stdin=terminal,
                               stdout=terminal, stderr=subprocess.DEVNULL, env={**env, **ENV, "NO_COLOR": "1"})
    os.close(terminal)
    answers = {b"Enter a value:": answer.encode() + b"\n"} if answer is not None else {}
    seen = read_terminal(controller, process, answers)
    return process.wait(timeout=30), seen.decode().replace("\r\n", "\n")


def store(repo: Path) -> str:
    return f"sqlite:///{repo / 'store.db'}"


@pytest.mark.parametrize("answer", ["no", "y", "YES", ""])
def test_anything_but_yes_cancels_with_nothing_written(repo: Path, answer: str) -> None:
    code, screen = on_terminal(["apply", "manifests", "--store", store(repo)], answer, repo)
    assert code == 1 and QUESTION in screen and "+ Provider openai-like (p.yaml:3)" in screen
    assert not (repo / "store.db").exists() or object_count(store(repo)) == 0


def test_yes_applies_and_the_plan_is_shown_once(repo: Path) -> None:
    code, screen = on_terminal(["apply", "manifests", "--store", store(repo)], "yes", repo)
    assert code == 0, screen
    assert screen.count("+ Provider openai-like") == 1 and "Apply complete: 1 applied" in screen
    assert object_count(store(repo)) == 1
    again, screen = on_terminal(["apply", "manifests", "--store", store(repo)], None, repo)
    assert again == 0 and QUESTION not in screen  # nothing to do: nothing to ask


def test_auto_approve_and_pipes_never_ask(repo: Path) -> None:
    code, screen = on_terminal(["apply", "manifests", "--store", store(repo), "--auto-approve"], None, repo)
    assert code == 0 and QUESTION not in screen
    (repo / "manifests" / "p.yaml").write_text(MANIFEST.replace("llm.example.com", "llm2.example.com"))
    piped = run_cli("apply", "manifests", "--store", store(repo), env=ENV, cwd=repo, stdin="no\n")
    assert piped.returncode == 0 and QUESTION not in piped.stdout


def test_a_saved_plan_never_asks(repo: Path) -> None:
    made = run_cli("plan", "manifests", "--store", store(repo), "--out", "p.plan", env=ENV, cwd=repo)
    assert made.returncode == 0, made.stderr
    code, screen = on_terminal(["apply", "p.plan", "--store", store(repo)], None, repo)
    assert code == 0 and QUESTION not in screen and "Apply complete: 1 applied" in screen


def test_json_at_a_terminal_needs_auto_approve(repo: Path) -> None:
    code, screen = on_terminal(["apply", "manifests", "--store", store(repo), "--format", "json"], None, repo)
    assert code == 1 and QUESTION not in screen and not (repo / "store.db").exists()
    code, screen = on_terminal(["apply", "manifests", "--store", store(repo), "--format", "json", "--auto-approve"],
                               None, repo)
    assert code == 0 and '"applied"' in screen
