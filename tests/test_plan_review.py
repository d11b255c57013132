"""What a reviewer reads, against a real store: objects addressed as written (manifest name, file:line,
beside the store key), list elements added and removed one by one, values the author never wrote
marked as derived, and the same in the markdown comment."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests import storefixtures
from tests.cliharness import example_manifests
from tests.conftest import run_cli
from tests.storefixtures import Backend

backend = storefixtures.backend


def test_a_changed_model_reads_as_its_author_wrote_it(backend: Backend, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    assert run_cli("apply", str(manifests.path), "--store", backend.url, env=manifests.env).returncode == 0
    model = manifests.path / "models" / "anthropic.yaml"
    model.write_text(model.read_text().replace("          - github.com\n", "          - go.dev\n", 1)
                     .replace("  context_limit: 200000\n", "  context_limit: 1000000\n", 1))
    text = run_cli("plan", str(manifests.path), "--store", backend.url, env=manifests.env).stdout
    assert "  # Model/default/anthropic/claude-sonnet-4-5 will be updated in place\n" in text
    assert "  ~ Model claude-sonnet (models/anthropic.yaml:7)\n" in text
    assert '      - config.provider_options.anthropic.allowed_domains[]: "github.com"\n' in text
    assert '      + config.provider_options.anthropic.allowed_domains[]: "go.dev"\n' in text
    assert "docs.python.org" not in text  # the elements that stay are not listed
    # the gateway's compression threshold follows the context window: derived, not written
    assert "      ~ compression_threshold: 70 -> 30 (derived)\n" in text
    assert "      ~ context_limit: 200000 -> 1000000\n" in text
    plan = json.loads(run_cli("plan", str(manifests.path), "--store", backend.url, "--format", "json",
                              env=manifests.env).stdout)
    change = next(c for c in plan["changes"] if c["kind"] == "Model")
    assert change["source"]["manifest"] == "Model/claude-sonnet" and change["source"]["line"] == 7
    assert "compression_threshold" in change["source"]["derived"]
    assert {"path": "config.provider_options.anthropic.allowed_domains[]", "before": "github.com",
            "after": None} in change["diff"]
    markdown = run_cli("plan", str(manifests.path), "--store", backend.url, "--format", "markdown",
                       env=manifests.env).stdout
    assert ("Model <b>claude-sonnet</b> (models/anthropic.yaml:7) <code>Model/default/anthropic/"
            "claude-sonnet-4-5</code>") in markdown
    assert '+ config.provider_options.anthropic.allowed_domains[]: "go.dev"' in markdown
    assert "- compression_threshold: 70 (derived)" in markdown
    assert not any(c["kind"] == "Override" for c in plan["changes"])  # still routed to the same model


def test_drift_says_when_and_by_whom_the_store_was_last_written(backend: Backend, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    assert run_cli("apply", str(manifests.path), "--store", backend.url, env=manifests.env).returncode == 0
    branch = tmp_path / "branch"
    shutil.copytree(manifests.path, branch)
    model = branch / "models" / "anthropic.yaml"
    model.write_text(model.read_text().replace("  context_limit: 200000\n", "  context_limit: 1000000\n", 1))
    # someone applies a branch; someone else edits a provider in the database by hand
    assert run_cli("apply", str(branch), "--store", backend.url, env=manifests.env).returncode == 0
    backend.query("INSERT INTO providers (name, type, display_name, enabled, base_url) VALUES "
                  "('by-hand', 'openai-compat', 'By hand', TRUE, 'https://llm.example.com/v1')")
    text = run_cli("plan", str(manifests.path), "--store", backend.url, "--prune", env=manifests.env).stdout
    sonnet = text[text.index("  # Model/default/anthropic/claude-sonnet-4-5"):]
    sonnet = sonnet[:sonnet.index("\n\n")]
    assert re.search(r"\(the store's value was last applied by \S+@\S+ pid \d+ at \S+ \(apply #2\)\)", sonnet)
    by_hand = text[text.index("  # Provider/by-hand will"):]
    assert "(the store's value was written outside reconciler (no apply among the last 50" in by_hand
    plan = json.loads(run_cli("plan", str(manifests.path), "--store", backend.url, "--format", "json", "--prune",
                              env=manifests.env).stdout)
    written = {c["key"]: c["last_written"] for c in plan["changes"]}
    assert written["by-hand"] is None and written["default/anthropic/claude-sonnet-4-5"]["apply"] == 2
    markdown = run_cli("plan", str(manifests.path), "--store", backend.url, "--format", "markdown",
                       env=manifests.env).stdout
    assert "# the store's value was last applied by" in markdown
