"""`apply --metrics-file`: Prometheus text format for node-exporter's textfile collector.

Every file is read back with prometheus_client's own parser.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler import __version__
from reconciler.errors import ReconcilerError
from reconciler.metrics import RunRecord, render_metrics, write_metrics
from reconciler.plan import ACTIONS
from reconciler.state import KIND_ORDER
from tests.conftest import KEY_A, ROOT, run_cli

MANIFESTS = """apiVersion: reconciler/v1
kind: Provider
metadata: {name: openai}
spec:
  type: openai
  api_keys: [{env: METRICS_TEST_KEY}]
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
NEW_PROVIDER = """---
apiVersion: reconciler/v1
kind: Provider
metadata: {name: anthropic}
spec:
  type: anthropic
  api_keys: [{env: METRICS_TEST_KEY_2}]
"""
KEY = "sk-metrics-test-0123456789abcdef"
Families = dict[str, list[tuple[dict[str, str], float]]]


def parse(path: Path) -> Families:
    families = list(text_string_to_metric_families(path.read_text()))
    assert all(f.type == "gauge" and f.documentation for f in families)
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}


def value(families: Families, name: str) -> float:
    ((labels, number),) = families[name]
    assert labels == {}
    return number


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "all.yaml").write_text(MANIFESTS)
    return tmp_path


def apply(repo: Path, *args: str, **env: str) -> tuple[int, str]:
    full = {"PYTHONPATH": str(ROOT), "RECONCILER_ENCRYPTION_KEY": KEY_A,
            "RECONCILER_STORE": f"sqlite:///{repo}/store.db", "METRICS_TEST_KEY": KEY, **env}
    result = run_cli("apply", "manifests", *args, env=full, cwd=repo)
    return result.returncode, result.stderr


def test_a_successful_apply_writes_every_series(repo: Path) -> None:
    before = time.time()
    code, err = apply(repo, "--metrics-file", "metrics/reconciler.prom")
    assert code == 0, err
    path = repo / "metrics" / "reconciler.prom"
    families = parse(path)
    assert families["reconciler_build_info"] == [({"version": __version__}, 1.0)]
    assert value(families, "reconciler_last_run_success") == 1
    assert before <= value(families, "reconciler_last_run_timestamp_seconds") <= time.time()
    assert value(families, "reconciler_last_success_timestamp_seconds") == value(
        families, "reconciler_last_run_timestamp_seconds")
    assert 0 < value(families, "reconciler_last_run_duration_seconds") < 60
    assert value(families, "reconciler_last_run_planned_changes") == 3
    assert value(families, "reconciler_last_run_failed_changes") == 0
    applied = {(labels["kind"], labels["action"]): n for labels, n in families["reconciler_last_run_applied_changes"]}
    assert set(applied) == {(k, a) for k in KIND_ORDER for a in ACTIONS}  # steady series, zeros included
    assert applied[("Provider", "create")] == 1 and applied[("Model", "create")] == 2
    assert sum(applied.values()) == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the collector runs as another user
    assert KEY not in path.read_text()

    code, err = apply(repo, "--metrics-file", "metrics/reconciler.prom")
    assert code == 0, err
    again = parse(path)
    assert value(again, "reconciler_last_run_planned_changes") == 0  # no drift: nothing to do
    assert sum(n for _, n in again["reconciler_last_run_applied_changes"]) == 0


def test_a_failed_apply_still_writes_metrics_and_keeps_the_last_success(repo: Path) -> None:
    code, err = apply(repo, RECONCILER_METRICS_FILE="m.prom")  # the option from the environment
    assert code == 0, err
    succeeded_at = value(parse(repo / "m.prom"), "reconciler_last_success_timestamp_seconds")

    (repo / "manifests" / "all.yaml").write_text(MANIFESTS + NEW_PROVIDER)  # its key is not set
    code, err = apply(repo, RECONCILER_METRICS_FILE="m.prom")
    assert code == 1 and "environment variable METRICS_TEST_KEY_2 is not set" in err
    families = parse(repo / "m.prom")
    assert value(families, "reconciler_last_run_success") == 0
    assert value(families, "reconciler_last_success_timestamp_seconds") == succeeded_at
    assert value(families, "reconciler_last_run_timestamp_seconds") > succeeded_at
    assert sum(n for _, n in families["reconciler_last_run_applied_changes"]) == 0

    (repo / "manifests" / "all.yaml").write_text("apiVersion: reconciler/v1\nkind: Model\n")
    code, err = apply(repo, RECONCILER_METRICS_FILE="m.prom")  # invalid manifests fail before planning
    assert code == 1 and "error" in err
    families = parse(repo / "m.prom")
    assert value(families, "reconciler_last_run_success") == 0
    assert "reconciler_last_run_planned_changes" not in families  # unknown, so not claimed


def test_an_unwritable_metrics_file_is_an_error_not_a_traceback(repo: Path) -> None:
    (repo / "not-a-directory").write_text("")
    code, err = apply(repo, "--metrics-file", "not-a-directory/reconciler.prom")
    assert code == 1
    assert "cannot write the metrics file not-a-directory/reconciler.prom" in err and "Traceback" not in err


def test_written_atomically_under_a_name_the_collector_ignores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renamed.append((os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "reconciler.prom"
    record = RunRecord(started=100.0, finished=101.5, success=True)
    write_metrics(str(path), record)
    ((temporary, final),) = renamed
    assert final == "reconciler.prom" and not temporary.endswith(".prom")  # node-exporter reads *.prom
    assert [p.name for p in tmp_path.iterdir()] == ["reconciler.prom"]
    assert value(parse(path), "reconciler_last_run_duration_seconds") == 1.5


def test_render_carries_the_last_success_only_when_known() -> None:
    failed = RunRecord(started=10.0, finished=12.0, success=False)
    text = render_metrics(failed, last_success=None)
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "reconciler_last_success_timestamp_seconds" not in names
    assert text.endswith("\n")
    carried = render_metrics(failed, last_success=5.0)
    assert "reconciler_last_success_timestamp_seconds 5.0\n" in carried


def test_write_metrics_raises_a_reconciler_error(tmp_path: Path) -> None:
    (tmp_path / "dir.prom").mkdir()
    with pytest.raises(ReconcilerError, match="cannot write the metrics file"):
        write_metrics(str(tmp_path / "dir.prom"), RunRecord(started=1.0, finished=2.0))
