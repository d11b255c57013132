"""Terminal manners: --color and the colour variables, the command line over RECONCILER_*
variables, -q for every command, validate's streams, and progress in CI logs."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cliharness import example_manifests
from tests.conftest import EXAMPLES, KEY_A, ROOT, run_cli
from tests.fakecoder import FakeCoder, fixtures

fake_coder = fixtures.fake_coder
ESC = "\x1b["
NO_COLOR_UNSET = {"NO_COLOR": "", "FORCE_COLOR": "", "CLICOLOR_FORCE": "", "TERM": "xterm"}


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo)
    openai = repo / "providers" / "openai.yaml"
    openai.write_text(openai.read_text().replace("https://api.openai.com/v1", "https://api.openai.com/v1/models"))
    return repo


@pytest.mark.parametrize("args, env, coloured", [
    ([], {}, False),                                              # a pipe: no colour
    (["--color", "always"], {}, True),
    (["--color", "never"], {"FORCE_COLOR": "1"}, False),
    ([], {"FORCE_COLOR": "1"}, True),
    ([], {"FORCE_COLOR": "0"}, False),
    ([], {"CLICOLOR_FORCE": "1"}, True),
    ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),           # NO_COLOR wins over forcing
    ([], {"NO_COLOR": "", "FORCE_COLOR": "1"}, True),             # an empty NO_COLOR is unset
    (["--color", "always"], {"NO_COLOR": "1"}, True),             # a flag wins over NO_COLOR
    ([], {"RECONCILER_COLOR": "always"}, True),
    (["--color", "never"], {"RECONCILER_COLOR": "always"}, False),  # the command line wins
])
def test_color_choice_and_variables(broken: Path, args: list[str], env: dict[str, str], coloured: bool) -> None:
    result = run_cli("validate", str(broken), *args, env={**NO_COLOR_UNSET, **env})
    assert result.returncode == 1
    assert "RC307" in result.stdout
    assert (ESC in result.stdout) is coloured, result.stdout


def on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; what it wrote."""
    main, secondary = pty.openpty()
    full = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    full.update({**NO_COLOR_UNSET, **env, "PYTHONPATH": str(ROOT)})
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", *args], stdout=secondary, stderr=secondary,
                            stdin=subprocess.DEVNULL, env=full)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_on_a_terminal_colour_unless_no_color_is_set(broken: Path) -> None:
    assert ESC in on_a_terminal(["validate", str(broken)], {})
    assert ESC not in on_a_terminal(["validate", str(broken)], {"NO_COLOR": "1"})
    assert ESC in on_a_terminal(["validate", str(broken)], {"NO_COLOR": ""})
    assert ESC not in on_a_terminal(["validate", str(broken), "--color", "never"], {})
    assert ESC not in on_a_terminal(["validate", str(broken)], {"TERM": "dumb"})


def test_a_flag_on_the_command_line_wins_over_a_variable() -> None:
    verbose = run_cli("validate", str(EXAMPLES), "-v", env={"RECONCILER_QUIET": "1"})
    assert verbose.returncode == 0, verbose.stderr
    assert re.search(r"validated \d+ documents", verbose.stderr) and "All manifests are valid" in verbose.stderr
    quiet = run_cli("-q", "validate", str(EXAMPLES), env={"RECONCILER_VERBOSE": "1"})
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    both_env = run_cli("validate", str(EXAMPLES), env={"RECONCILER_QUIET": "1", "RECONCILER_VERBOSE": "1"})
    assert both_env.returncode == 1
    assert "RECONCILER_QUIET and RECONCILER_VERBOSE are both set" in both_env.stderr
    both_flags = run_cli("validate", str(EXAMPLES), "-q", "-v")
    assert both_flags.returncode == 1 and "--quiet and --verbose cannot be used together" in both_flags.stderr
    assert "both set" not in both_flags.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif", "gitlab"])
def test_validate_writes_diagnostics_to_stdout_and_the_summary_to_stderr(broken: Path, fmt: str) -> None:
    result = run_cli("validate", str(broken), "--format", fmt)
    assert result.returncode == 1
    assert "RC307" in result.stdout and "RC307" not in result.stderr
    assert re.fullmatch(r"1 error, 0 warnings in \d+ files\.\n", result.stderr), result.stderr
    quiet = run_cli("validate", str(broken), "--format", fmt, "-q")
    assert "RC307" in quiet.stdout and quiet.stderr == result.stderr  # the failure is still said
    valid = run_cli("validate", str(EXAMPLES), "--format", fmt, "-q")
    assert valid.returncode == 0 and valid.stderr == ""
    if fmt == "text":
        assert valid.stdout == ""


ENV_FILE = """CODER_AI_GATEWAY_PROVIDER_0_TYPE=openai
CODER_AI_GATEWAY_PROVIDER_0_KEYS=sk-aaaaaaaaaaaaaaaaaaaa,sk-bbbbbbbbbbbbbbbbbbbb
"""


def test_quiet_means_only_errors_for_every_command(tmp_path: Path) -> None:
    env_file = tmp_path / "coder.env"
    env_file.write_text(ENV_FILE)
    loud = run_cli("import-env", "--env-file", str(env_file), "--out", str(tmp_path / "m"))
    assert loud.returncode == 0 and "split them" in loud.stderr
    quiet = run_cli("import-env", "--env-file", str(env_file), "--out", str(tmp_path / "q"), "-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and (tmp_path / "q" / "providers").is_dir()

    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {"RECONCILER_ENCRYPTION_KEY": KEY_A, "RECONCILER_STORE": store}
    applied = run_cli("apply", str(tmp_path / "q"), "-q", env={**env, "RECONCILER_OPENAI_API_KEY_1": "sk-a" * 6,
                                                               "RECONCILER_OPENAI_API_KEY_2": "sk-b" * 6})
    assert applied.returncode == 0 and applied.stdout == applied.stderr == "", applied.stderr
    for args in (["plan", str(tmp_path / "q"), "--out", str(tmp_path / "plan.json")],
                 ["show", str(tmp_path / "plan.json")],
                 ["rekey"],
                 ["export", "--out", str(tmp_path / "exported")],
                 ["schema", "--out", str(tmp_path / "schemas")]):
        result = run_cli(*args, "-q", env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == "", (args, result.stderr)
    # an error is still an error
    failed = run_cli("plan", str(tmp_path / "nowhere"), "-q", env=env)
    assert failed.returncode == 1 and "error" in failed.stderr.lower()


def test_progress_in_a_log_every_few_seconds(fake_coder: FakeCoder, tmp_path: Path) -> None:
    example = example_manifests(tmp_path)
    manifests = example.path
    env = {**example.env, "CODER_SESSION_TOKEN": fake_coder.token, "RECONCILER_STORE": "coder+" + fake_coder.url,
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    fake_coder.latency = 0.05  # each request takes a while: the apply lasts well over the interval
    result = run_cli("apply", str(manifests), "--parallelism", "1", "--progress-interval", "0.3",
                     "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Still applying... [")]
    assert len(lines) >= 2, result.stderr
    assert "\r" not in result.stderr and ESC not in result.stderr  # a log, not a terminal
    counts = [int(line.split("[", 1)[1].split("/", 1)[0]) for line in lines]
    assert counts == sorted(counts) and lines[-1].endswith("s elapsed]")
    total = json.loads(result.stdout)["summary"]["applied"]
    assert all(f"/{total} done" in line for line in lines)
    # -q: no progress
    fake_coder.latency = 0.0
    quiet = run_cli("apply", str(manifests), "-q", "--progress-interval", "0.01", env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.parametrize("variable, value, option", [
    ("RECONCILER_MAX_DELETES", "abc", "--max-deletes"),
    ("RECONCILER_COLOR", "sometimes", "--color"),
    ("RECONCILER_PROGRESS_INTERVAL", "nan", "--progress-interval"),
])
def test_an_error_about_a_value_from_a_variable_names_the_variable(variable: str, value: str, option: str) -> None:
    command = "apply" if option == "--progress-interval" else "plan"
    result = run_cli(command, str(EXAMPLES), "--store", "sqlite:///nowhere/s.db", env={variable: value})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Invalid value for '{option}' (env var: '{variable}')" in result.stderr, result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = run_cli("completion", shell)
    assert result.returncode == 0 and "_RECONCILER_COMPLETE" in result.stdout
    assert result.stdout.strip()


def test_bash_completes_commands_and_choices(tmp_path: Path) -> None:
    script = run_cli("completion", "bash").stdout
    shim = tmp_path / "reconciler"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
    shim.chmod(0o755)
    probe = (script + '\nCOMP_WORDS=(reconciler val); COMP_CWORD=1; _reconciler_completion reconciler\n'
             'echo "commands: ${COMPREPLY[*]}"\n'
             'COMPREPLY=(); COMP_WORDS=(reconciler validate --format s); COMP_CWORD=3\n'
             '_reconciler_completion reconciler\n'
             'echo "formats: ${COMPREPLY[*]}"\n')
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True, text=True,
                            env=env, timeout=60)
    assert "commands: validate" in result.stdout, result.stdout + result.stderr
    assert "formats: sarif" in result.stdout, result.stdout + result.stderr
