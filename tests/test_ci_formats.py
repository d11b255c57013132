"""`validate --format sarif` against the SARIF 2.1.0 JSON Schema (vendored in tests/data, see its
NOTICE), and `--format gitlab` against the shape of GitLab's Code Quality report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler import __version__
from reconciler.validate.codes import CODES
from tests.conftest import EXAMPLES, ROOT, run_cli

SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
GITLAB_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """The examples with an error (a base URL with a request path), a warning (plain http to a
    remote host) and a second error in another file."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo)
    openai = repo / "providers" / "openai.yaml"
    openai.write_text(openai.read_text().replace("https://api.openai.com/v1", "https://api.openai.com/v1/models"))
    internal = repo / "providers" / "llm-internal.yaml"
    text = internal.read_text()
    assert "base_url: https://" in text
    internal.write_text(text.replace("base_url: https://", "base_url: http://", 1))
    (repo / "models" / "with space.yaml").write_text("apiVersion: reconciler/v1\nkind: Model\n")
    return repo


def test_sarif_validates_against_the_sarif_2_1_0_schema(broken: Path) -> None:
    result = run_cli("validate", ".", "--format", "sarif", cwd=broken)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator.check_schema(SARIF_SCHEMA)
    errors = sorted(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(log), key=str)
    assert not errors, [e.message for e in errors]

    (run,) = log["runs"]
    assert log["version"] == "2.1.0" and run["tool"]["driver"]["version"] == __version__
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert {r["ruleId"] for r in results} == {r["id"] for r in rules}
    for res in results:
        rule = rules[res["ruleIndex"]]
        assert rule["id"] == res["ruleId"] and rule["shortDescription"]["text"] == CODES[res["ruleId"]].summary
        location = res["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert not uri.startswith(("./", "/")) and location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert location["region"]["startLine"] >= 1
    levels = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"]): r["level"]
              for r in results}
    assert levels[("providers/openai.yaml", "RC307")] == "error"
    assert levels[("providers/llm-internal.yaml", "RC304")] == "warning"
    assert ("models/with%20space.yaml", "RC201") in levels  # a URI, percent-encoded
    openai = next(r for r in results if r["ruleId"] == "RC307")
    assert openai["locations"][0]["physicalLocation"]["region"] == {"startLine": 16, "startColumn": 13}


def test_sarif_of_valid_manifests_is_an_empty_run_that_validates() -> None:
    result = run_cli("validate", ".", "--format", "sarif", cwd=EXAMPLES)
    assert result.returncode == 0
    log = json.loads(result.stdout)
    assert not list(jsonschema.Draft4Validator(SARIF_SCHEMA).iter_errors(log))
    assert log["runs"][0]["results"] == []


def check_code_quality(report: Any) -> None:
    """GitLab's Code Quality report: a JSON array of issues, each with these fields."""
    assert isinstance(report, list)
    for issue in report:
        assert isinstance(issue["description"], str) and issue["description"]
        assert isinstance(issue["check_name"], str) and issue["check_name"]
        assert isinstance(issue["fingerprint"], str) and len(issue["fingerprint"]) == 64
        assert issue["severity"] in GITLAB_SEVERITIES
        path = issue["location"]["path"]
        assert isinstance(path, str) and not path.startswith(("./", "/"))
        begin = issue["location"]["lines"]["begin"]
        assert isinstance(begin, int) and begin >= 1
    fingerprints = [i["fingerprint"] for i in report]
    assert len(set(fingerprints)) == len(fingerprints), "fingerprints must be unique"


def test_gitlab_code_quality_report(broken: Path) -> None:
    result = run_cli("validate", ".", "--format", "gitlab", cwd=broken)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    check_code_quality(report)
    found = {(i["location"]["path"], i["check_name"]): i for i in report}
    error = found[("providers/openai.yaml", "RC307")]
    assert error["severity"] == "major" and error["location"]["lines"]["begin"] == 16
    assert error["description"].startswith("RC307: base_url ends in /models")
    assert found[("providers/llm-internal.yaml", "RC304")]["severity"] == "minor"

    # Lines above a finding move: its fingerprint stays, so GitLab does not see a new finding.
    openai = broken / "providers" / "openai.yaml"
    openai.write_text("# a comment that moves every line down\n" + openai.read_text())
    again = {(i["location"]["path"], i["check_name"]): i
             for i in json.loads(run_cli("validate", ".", "--format", "gitlab", cwd=broken).stdout)}
    moved = again[("providers/openai.yaml", "RC307")]
    assert moved["location"]["lines"]["begin"] == 17 and moved["fingerprint"] == error["fingerprint"]


def test_absolute_paths_become_relative_to_the_working_directory(broken: Path) -> None:
    for fmt in ("gitlab", "sarif"):
        result = run_cli("validate", str(broken), "--format", fmt, cwd=broken)
        assert result.returncode == 1
        assert str(broken) not in result.stdout and "providers/openai.yaml" in result.stdout, fmt


def test_identical_findings_get_distinct_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: reconciler/v1\nkind: Model\n---\napiVersion: reconciler/v1\n"
                                     "kind: Model\n")
    result = run_cli("validate", ".", "--format", "gitlab", cwd=tmp_path)
    report = json.loads(result.stdout)
    check_code_quality(report)
    assert len(report) >= 2
