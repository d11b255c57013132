"""Execute a Plan against a Store and produce an ApplyReport."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.changes import APPLIED, FAILED, SKIPPED, Change, ChangeResult
from reconciler.errors import ReconcilerError, SecretError, StoreError
from reconciler.plan import FORMAT_VERSION, Plan
from reconciler.secrets import SecretResolver
from reconciler.stores.base import ProgressCallback, RunInfo, Store


@dataclass
class ApplyReport:
    results: list[ChangeResult]
    store: str
    started_at: float
    finished_at: float
    error: str = ""  # why the apply as a whole failed, if it did
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and all(r.status == APPLIED for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {APPLIED: 0, FAILED: 0, SKIPPED: 0}
        for result in self.results:
            out[result.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "store": self.store,
            "status": "success" if self.ok else "failed",
            "error": self.error,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_seconds": round(self.finished_at - self.started_at, 3),
            "summary": self.counts(),
            "changes": [r.to_dict() for r in self.results],
            "notes": list(self.notes),
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def resolve_needed(changes: Sequence[Change], resolver: SecretResolver) -> dict[str, str]:
    """Every secret the changes send, before the first write; all missing ones named at once."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for ref in sorted({ref for change in changes for ref in change.needs}):
        try:
            values[ref] = resolver.resolve(ref)
        except SecretError as exc:
            missing.append(str(exc))
    if missing:
        count = f"{len(missing)} secret{'s' if len(missing) != 1 else ''} cannot be read"
        raise SecretError(f"nothing was applied: {count}:\n  " + "\n  ".join(missing))
    return values


def apply_plan(
    plan: Plan,
    store: Store,
    resolver: SecretResolver,
    run: RunInfo,
    progress: ProgressCallback | None = None,
) -> ApplyReport:
    """Apply the plan's changes; an empty plan makes no call to the store at all."""
    if plan.refusal:
        raise ReconcilerError(f"apply refused: {plan.refusal}")
    started = time.time()
    if plan.empty:
        return ApplyReport([], store.url, started, time.time(), notes=list(plan.notes))
    secrets = resolve_needed(plan.changes, resolver)
    try:
        results = store.apply(plan.changes, secrets, run, progress)
    except StoreError as exc:
        if not store.capabilities.transactional:
            raise
        message = f"rolled back, nothing was applied: {exc}"
        results = [ChangeResult(c, FAILED if i == 0 else SKIPPED, message if i == 0 else "")
                   for i, c in enumerate(plan.changes)]
        return ApplyReport(results, store.url, started, time.time(), error=str(exc), notes=list(plan.notes))
    return ApplyReport(results, store.url, started, time.time(), notes=list(plan.notes))
