"""When and by whom the store's side of a change was last written, where the store keeps a history.

A SQL store records every apply (who, when, the changes it made). For each change of
a plan that alters or removes something already in the store, the newest of the
store's last `DEPTH` applies that wrote that object says who put the value there
and when; when none of them did, the value was written outside reconciler (or
before them), and the plan says that. A store without history (Coder) gives
nothing here. The store is only read.
"""

from __future__ import annotations

from typing import Any

from reconciler.changes import CREATE
from reconciler.plan import Plan

DEPTH = 50  # applies read back; each holds its change list


def last_writes(store: Any, plan: Plan, depth: int = DEPTH) -> None:
    """Fill `plan.provenance` (change id -> {"apply", "who", "when"[, "commit"]}, or {} when no recorded
    apply wrote it)."""
    wanted = {c.id for c in plan.changes if c.action != CREATE}
    read_history = getattr(getattr(store, "_store", store), "history", None)
    if not wanted or read_history is None:
        return
    found: dict[str, dict[str, Any]] = {}
    for entry in read_history(depth):  # newest first
        applied = {r.get("id") for r in entry.get("results", []) if r.get("status") == "applied"}
        for ident in (wanted & applied) - found.keys():
            found[ident] = {"apply": entry["id"], "who": entry["who"], "when": entry["finished_at"],
                            **({"commit": entry["commit"]} if entry.get("commit") else {})}
        if found.keys() == wanted:
            break
    plan.provenance = {ident: found.get(ident, {}) for ident in wanted}


def provenance_line(plan: Plan, change_id: str) -> str:
    """One line for a reviewer, or "" when the store keeps no history."""
    if change_id not in plan.provenance:
        return ""
    last = plan.provenance[change_id]
    if not last:
        return (f"the store's value was written outside reconciler (no apply among the last {DEPTH} "
                "in its history wrote it)")
    commit = f", commit {last['commit'][:12]}" if last.get("commit") else ""
    return f"the store's value was last applied by {last['who']} at {last['when']} (apply #{last['apply']}{commit})"
