"""Prometheus text-format metrics of one apply, for the node-exporter textfile collector.

`apply --metrics-file FILE` writes them after every run, failed runs included,
atomically (a temporary file renamed over FILE), so the collector never reads
half a file. Every kind/action pair is always present (zero when nothing
happened), so alert rules see steady series. The time of the last successful
run is carried over from the previous file when this run failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler import __version__
from reconciler.apply import ApplyReport
from reconciler.changes import APPLIED, FAILED
from reconciler.plan import ACTIONS, Plan
from reconciler.planfile import write_atomic
from reconciler.state import KIND_ORDER

PREFIX = "reconciler_"
LAST_SUCCESS = PREFIX + "last_success_timestamp_seconds"
_LAST_SUCCESS_LINE = re.compile(rf"^{LAST_SUCCESS} (\S+)$", re.MULTILINE)


@dataclass
class RunRecord:
    """What one apply did, filled in as it goes; a run that failed early leaves fields unset."""

    started: float
    finished: float = 0.0
    plan: Plan | None = None
    report: ApplyReport | None = None
    success: bool = False


def render_metrics(record: RunRecord, last_success: float | None) -> str:
    results = record.report.results if record.report is not None else []
    applied = {(kind, action): 0 for kind in KIND_ORDER for action in ACTIONS}
    for result in results:
        if result.status == APPLIED:
            applied[(result.change.kind, result.change.action)] += 1
    lines = [
        *_gauge("build_info", "The reconciler version that wrote this file.",
                [(f'{{version="{__version__}"}}', 1)]),
        *_gauge("last_run_timestamp_seconds", "When the last apply finished (Unix time).",
                [("", record.finished)]),
        *_gauge("last_run_success", "1 when the last apply succeeded, 0 when it failed.",
                [("", 1 if record.success else 0)]),
        *_gauge("last_run_duration_seconds", "How long the last apply took, start to finish.",
                [("", record.finished - record.started)]),
    ]
    if last_success is not None:
        lines += _gauge("last_success_timestamp_seconds", "When an apply last succeeded (Unix time).",
                        [("", last_success)])
    if record.plan is not None:
        lines += _gauge("last_run_planned_changes",
                        "Changes the last apply found to make: drift between the manifests and the store.",
                        [("", len(record.plan.changes))])
    lines += _gauge("last_run_applied_changes", "Changes the last apply made, by kind and action.",
                    [(f'{{kind="{kind}",action="{action}"}}', n) for (kind, action), n in applied.items()])
    lines += _gauge("last_run_failed_changes", "Changes the last apply could not make.",
                    [("", sum(r.status == FAILED for r in results))])
    return "\n".join(lines) + "\n"


def _gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    return [
        f"# HELP {PREFIX}{name} {help_text}",
        f"# TYPE {PREFIX}{name} gauge",
        *(f"{PREFIX}{name}{labels} {_number(value)}" for labels, value in samples),
    ]


def _number(value: float) -> str:
    return repr(round(value, 3)) if isinstance(value, float) else str(value)


def previous_success(path: str) -> float | None:
    """The last-success time recorded in an earlier metrics file, if there is one."""
    try:
        with open(path, encoding="utf-8") as fh:
            found = _LAST_SUCCESS_LINE.search(fh.read())
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return float(found.group(1)) if found else None
    except ValueError:
        return None


def write_metrics(path: str, record: RunRecord) -> None:
    """Write the metrics file atomically; ReconcilerError when it cannot be written."""
    last_success = record.finished if record.success else previous_success(path)
    write_atomic(path, render_metrics(record, last_success), what="the metrics file")
