"""Messages a new user meets: store URLs that are paths, a SQLite store that is not there, a path
that does not exist, the source line under a diagnostic, efforts a provider family is never sent,
overlapping price catalogs, and where an apply came from in the history."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.provenance import run_source
from tests.cliharness import example_manifests
from tests.conftest import EXAMPLES, KEY_A, run_cli


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(EXAMPLES, copy)
    return copy


@pytest.mark.parametrize("given", ["store.db", ".reconciler/store.db", "/var/lib/reconciler/store.db"])
def test_a_bare_path_as_store_suggests_the_sqlite_url(given: str) -> None:
    result = run_cli("plan", str(EXAMPLES), "--store", given)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"'{given}' is not a store URL: for a SQLite file write sqlite:///{given}" in result.stderr


def test_plan_against_a_missing_sqlite_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "stroe.db"
    result = run_cli("plan", str(EXAMPLES), "--store", f"sqlite:///{missing}")
    assert result.returncode == 0
    assert f"Note: no SQLite store at {missing}" in result.stderr and "read as an empty store" in result.stderr
    assert not missing.exists() and not missing.parent.exists()  # plan created nothing
    quiet = run_cli("plan", str(EXAMPLES), "--store", f"sqlite:///{missing}", "-q")
    assert quiet.stderr == ""
    # once the store exists, no note
    env = {"RECONCILER_ENCRYPTION_KEY": KEY_A, "RECONCILER_STORE": f"sqlite:///{tmp_path / 's.db'}"}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "settings.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Settings\nmetadata: {name: deployment}\n"
        "spec: {personal_model_overrides: {allow_users: true}}\n")
    assert run_cli("apply", str(tmp_path / "m"), "-q", env=env).returncode == 0
    again = run_cli("plan", str(tmp_path / "m"), env=env)
    assert again.returncode == 0 and "Note: no SQLite store" not in again.stderr


def test_a_missing_manifest_path_has_no_invented_position(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    text = run_cli("validate", str(missing))
    assert text.returncode == 1
    assert text.stdout == f"{missing}: error RC101 no such file or directory\n"
    (diagnostic,) = json.loads(run_cli("validate", str(missing), "--format", "json").stdout)["diagnostics"]
    assert (diagnostic["line"], diagnostic["column"]) == (0, 0)
    github = run_cli("validate", str(missing), "--format", "github").stdout
    assert github.startswith(f"::error file={missing},title=RC101::") and "line=" not in github
    sarif = json.loads(run_cli("validate", str(missing), "--format", "sarif").stdout)
    assert "region" not in sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("validate", str(empty)).stdout.startswith(f"{empty}: error RC115 ")


def test_text_diagnostics_show_the_line_with_a_caret(repo: Path) -> None:
    openai = repo / "providers" / "openai.yaml"
    openai.write_text(openai.read_text().replace("https://api.openai.com/v1", "https://api.openai.com/v1/models"))
    result = run_cli("validate", ".", cwd=repo)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "error RC307" in line)
    assert lines[at].startswith("./providers/openai.yaml:16:13: error RC307")
    assert lines[at + 1] == "   16 |   base_url: https://api.openai.com/v1/models"
    assert lines[at + 2] == "      |             ^"
    assert lines[at + 2].index("^") == lines[at + 1].index("https")  # under column 13
    # machine formats carry no excerpt
    assert "   16 |" not in run_cli("validate", ".", "--format", "github", cwd=repo).stdout


def test_a_yaml_syntax_error_shows_its_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: reconciler/v1\nkind: [Provider\n")
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1 and "error RC105" in result.stdout
    assert "   2 | kind: [Provider\n" in result.stdout


@pytest.mark.parametrize("line", [
    "  api_keys: [sk-proj-CANARY0123456789abcdefABCDEF]",              # RC202: never shown
    "  base_url: https://user:CANARYpass@llm.example.com/v1",          # credentials in a URL
    "  display_name: [AKIACANARY0123456789XY]",                        # a key-like token, any error
])
def test_a_line_that_may_hold_a_secret_is_never_shown(tmp_path: Path, line: str) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: reconciler/v1\nkind: Provider\nmetadata: {name: p}\nspec:\n"
                                     f"  type: openai\n{line}\n")
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'p.yaml'}:6:" in result.stdout  # a diagnostic on that very line
    assert "CANARY" not in result.stdout + result.stderr, result.stdout
    assert "   6 | " not in result.stdout


def test_an_effort_the_family_is_never_sent_is_a_warning(repo: Path) -> None:
    overrides = repo / "overrides.yaml"
    text = overrides.read_text()
    assert "reasoning_effort:" in text or "model:" in text
    model = repo / "models" / "anthropic.yaml"
    body = model.read_text()
    assert "reasoning_effort: {default: " in body or "reasoning_effort:" in body
    import re

    changed, n = re.subn(r"default: (low|medium|high)", "default: minimal", body, count=1)
    assert n == 1, body
    model.write_text(changed)
    result = run_cli("validate", ".", cwd=repo)
    assert result.returncode == 0  # a warning
    assert "warning RC428 reasoning_effort 'minimal' is not sent to anthropic models (Coder sends only " \
           "low, medium, high, xhigh, max): it becomes the provider's default effort" in result.stdout
    assert run_cli("validate", ".", "--strict", cwd=repo).returncode == 1


CATALOGS = """apiVersion: reconciler/v1
kind: PriceCatalog
metadata: {name: imported}
spec:
  prices:
    - {provider: openai, model: gpt-5, input: 1.25, output: 10}
---
apiVersion: reconciler/v1
kind: PriceCatalog
metadata: {name: local}
spec:
  priority: %s
  prices:
    - {provider: openai, model: gpt-5, input: 1.0}
"""


def test_price_catalogs_overlap_by_priority(repo: Path, tmp_path: Path) -> None:
    for path in (repo / "prices").iterdir():
        path.unlink()
    (repo / "prices" / "catalogs.yaml").write_text(CATALOGS % 10)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    result = run_cli("plan", ".", "--store", store, "--format", "json", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    prices = {c["key"]: {d["path"]: d["after"] for d in c["diff"]}
              for c in json.loads(result.stdout)["changes"] if c["kind"] == "Price"}
    assert prices["openai/gpt-5"]["input"] == 1_000_000  # the higher priority wins the field it gives
    assert prices["openai/gpt-5"]["output"] == 10_000_000  # the lower one still gives the others
    (repo / "prices" / "catalogs.yaml").write_text(CATALOGS % 0)
    equal = run_cli("validate", ".", cwd=repo)
    assert equal.returncode == 1 and "error RC409 input price of openai/gpt-5" in equal.stdout
    assert "higher spec.priority" in equal.stdout


def test_history_records_the_commit_and_the_ci_run(tmp_path: Path) -> None:
    example = example_manifests(tmp_path)
    repo = example.path
    env = {**example.env, "RECONCILER_STORE": f"sqlite:///{tmp_path / 'store.db'}",
           "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "acme/gateway-config", "GITHUB_RUN_ID": "42"}
    assert run_cli("apply", ".", "-q", env=env, cwd=repo).returncode == 0
    # a local apply from a git checkout: git rev-parse
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "."], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "m"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    settings = repo / "settings.yaml"
    settings.write_text(settings.read_text().replace("allow_users: true", "allow_users: false")
                        if "allow_users: true" in settings.read_text()
                        else settings.read_text().replace("allow_users: false", "allow_users: true"))
    local = {k: v for k, v in env.items() if not k.startswith("GITHUB_")}
    assert run_cli("apply", str(repo), "-q", env=local, cwd=tmp_path).returncode == 0
    entries = json.loads(run_cli("history", "--format", "json", env=local).stdout)["history"]
    newest, oldest = entries[0], entries[-1]
    assert oldest["commit"] == env["GITHUB_SHA"]
    assert oldest["run_url"] == "https://github.com/acme/gateway-config/actions/runs/42"
    assert newest["commit"] == head and newest["run_url"] is None
    text = run_cli("history", env=local).stdout
    assert f"commit {head[:12]}" in text and "run https://github.com/acme/gateway-config/actions/runs/42" in text


def test_run_source_reads_gitlab_and_ignores_what_is_not_a_commit(tmp_path: Path) -> None:
    gitlab = run_source([str(tmp_path)], {"CI_COMMIT_SHA": "f" * 40, "CI_JOB_URL": "https://gitlab.example.com/j/1"})
    assert gitlab == {"commit": "f" * 40, "run_url": "https://gitlab.example.com/j/1"}
    assert run_source([str(tmp_path)], {"GITHUB_SHA": "not-a-sha; rm -rf /"}) == {}  # no git here either
