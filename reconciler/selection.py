"""What `--select` owns: the slice of the manifests and of the store that a plan may touch.

A team that owns a slice of the gateway plans with `--select team=platform`:

- the manifests whose labels match are synced; the others are not selected;
- a store object that no selected manifest names is the slice's orphan when its
  STORED labels match the selector (the labels its last apply wrote): `--prune`
  deletes it, and without `--prune` it is unmanaged (drift for the alarm);
- any other store object is "not selected": another owner's, never deleted and
  never drift. An object that a manifest outside the selection names is not
  selected even when its stored labels still match (it is moving to another
  owner, whose apply rewrites its labels).

A store that keeps no labels (Coder) cannot say which objects a selection owns:
`--select --prune` is refused there with its reason, and every object no selected
manifest names is not selected. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.selector import Selector, parse_all
from reconciler.state import NO_META, SETTINGS, Key, State
from reconciler.stores.base import Capabilities

if TYPE_CHECKING:
    from reconciler.plan import Plan, PlanOptions


@dataclass
class Selection:
    desired: State  # the selected manifests' objects
    selector: Selector = field(default_factory=Selector)
    named: frozenset[tuple[str, Key]] = frozenset()  # every object any manifest names
    actual: State | None = None
    keeps_labels: bool = False
    plan: Plan | None = None

    @classmethod
    def of(cls, desired: State, actual: State, caps: Capabilities, options: PlanOptions, plan: Plan) -> Selection:
        if not options.select:
            return cls(desired)
        selector = parse_all(options.select)
        out = State(default_organization=desired.default_organization, default_prices=desired.default_prices)
        for kind, key, record in desired.items():
            meta = desired.meta.get((kind, key), NO_META)
            if selector.matches(meta.get("labels") or {}):
                out.of(kind)[key] = record
                out.meta[(kind, key)] = meta
        if not out.count():
            plan.notes.append(f"--select {selector.text()} matches no manifest: nothing is synced"
                              + (" or pruned" if options.prune else ""))
        if options.prune and not caps.keeps_metadata:
            plan.refusal = (
                f"--select with --prune: this store keeps no labels, so which of its objects the selection "
                f"{selector.text()} owns cannot be known and nothing could be pruned safely; plan the whole "
                "store with --prune and no --select, or plan the selection without --prune")
        named = frozenset((kind, key) for kind, key, _ in desired.items())
        return cls(out, selector, named, actual, caps.keeps_metadata, plan)

    def owns(self, kind: str, key: Key) -> bool:
        """Whether a store object no selected manifest names is the selection's orphan (else it is
        recorded as not selected)."""
        if self.plan is None or self.actual is None or kind == SETTINGS:
            return True  # no selection; or the settings singleton, never deleted nor unmanaged
        if (kind, key) not in self.named and self.keeps_labels:
            labels = self.actual.meta.get((kind, key), NO_META).get("labels") or {}
            if self.selector.matches(labels):
                return True
        self.plan.not_selected.append(f"{kind}/{'/'.join(key)}")
        return False
