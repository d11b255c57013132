"""Where an apply came from: the git commit of the manifests and the CI run, when they are known.

From CI's variables first (GitHub Actions: GITHUB_SHA and GITHUB_SERVER_URL / GITHUB_REPOSITORY /
GITHUB_RUN_ID; GitLab CI: CI_COMMIT_SHA and CI_JOB_URL), else `git rev-parse HEAD` in the
manifests' directory. Nothing here fails an apply: what cannot be known is left out.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _git_commit(directory: str) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=directory or ".",
                              capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _SHA.fullmatch(commit) else None


def _directory(paths: Sequence[str]) -> str:
    first = paths[0] if paths else "."
    return first if os.path.isdir(first) else (os.path.dirname(first) or ".")


def run_source(paths: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`{"commit": sha, "run_url": url}`, each only when known."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    commit = (env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA") or "").strip().lower()
    if not _SHA.fullmatch(commit):
        commit = _git_commit(_directory(paths)) or ""
    if commit:
        out["commit"] = commit
    server, repository, run_id = (env.get(name, "").strip() for name in
                                  ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server.startswith("https://") and repository and run_id.isdigit():
        out["run_url"] = f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    elif env.get("CI_JOB_URL", "").strip().startswith("https://"):
        out["run_url"] = env["CI_JOB_URL"].strip()
    return out
