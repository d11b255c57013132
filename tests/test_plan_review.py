"""What a reviewer reads, against a real store: objects addressed as written (manifest name, file:line,
beside the store key), list elements added and removed one by one, values the author never wrote
marked as derived, and the same in the markdown comment."""

from __future__ import annotations

import json
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
