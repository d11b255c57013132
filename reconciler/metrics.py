"""Prometheus text-format metrics of one apply (or one verify), for the node-exporter textfile collector.

`apply --metrics-file FILE` writes them after every run, failed runs included,
atomically (a temporary file renamed over FILE), so the collector never reads
half a file. Every kind/action pair is always present (zero when nothing
happened), so alert rules see steady series. The time of the last successful
run is carried over from the previous file when this run failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler import __version__
from reconciler.apply import ApplyReport
from reconciler.changes import APPLIED, FAILED
from reconciler.plan import ACTIONS, Plan
from reconciler.planfile import write_atomic
from reconciler.state import KIND_ORDER

if TYPE_CHECKING:
    from reconciler.verify.report import VerifyReport

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


def render_verify_metrics(report: VerifyReport | None, finished: float, success: bool) -> str:
    """`verify --metrics-file`: per provider and key, a gauge per verdict (1 for the one it got, 0 for
    the others), so that an alert can fire when a key stops working. A run that failed before it
    checked anything (bad manifests, no token) writes only its time and `success 0`."""
    from reconciler.verify.report import VERDICTS

    lines = [
        *_gauge("verify_last_run_timestamp_seconds", "When the last verify finished (Unix time).",
                [("", finished)]),
        *_gauge("verify_last_run_success", "1 when everything the last verify checked was ok, else 0.",
                [("", 1 if success else 0)]),
    ]
    if report is None:
        return "\n".join(lines) + "\n"
    providers, keys = [], []
    for p in report.providers:
        labels = f'provider="{p.name}",type="{p.type}"'
        providers += [(f'{{{labels},verdict="{v}"}}', int(p.verdict == v)) for v in VERDICTS]
        for k in p.keys:
            keys += [(f'{{{labels},key="{k.label}",verdict="{v}"}}', int(k.verdict == v)) for v in VERDICTS]
    lines += _gauge("verify_provider_verdict", "The verdict of each provider: 1 for the one it got.", providers)
    lines += _gauge("verify_key_verdict", "The verdict of each key of each provider (key = its place in "
                                          "api_keys, or coder): 1 for the one it got.", keys)
    lines += _gauge("verify_last_run_duration_seconds", "How long the last verify took.", [("", report.seconds)])
    return "\n".join(lines) + "\n"


def write_verify_metrics(path: str, report: VerifyReport | None, finished: float, success: bool) -> None:
    write_atomic(path, render_verify_metrics(report, finished, success), what="the metrics file")
