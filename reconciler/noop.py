"""The no-op shortcut: a plan (or apply) that finds exactly what a previous one found to be
unchanged answers "No changes" without reading the manifests or the store again.

It is taken only when all of these are what they were when a run with the same command line
(paths, store, options, working directory, tool) planned no change:
- the manifest files: the same list, each with the same size, mtime, ctime and inode (a file
  changed within two seconds before that run was stat'ed is also compared by the digest of its
  bytes, since a second change could keep its timestamps);
- the store's change token (`change_token()`, which only the SQLite store offers: the stat and
  header of its database file, of its -wal and -journal files, and its last apply's id; a store
  changed within the last two seconds has no token);
- the store's keyed fingerprints of every secret the manifests reference (the values are
  resolved again; only a digest of the fingerprints is kept).

A store without a cheap, reliable change token (PostgreSQL: its statistics lag and another
client's writes leave no mark a reader can see without reading; Coder: a REST API) always
plans in full. The record is written only after a run that planned no change, and only when
the store's token did not move while that run read it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from reconciler import cache

if TYPE_CHECKING:
    from reconciler.plan import PlanOptions
    from reconciler.run import PlanOutcome
    from reconciler.secrets import SecretResolver
    from reconciler.stores.base import Store

View = tuple[str, str, "str | None"]  # (reference, group, the store's view of its value)


def change_token(store: Store) -> Any:
    inner = getattr(store, "_store", store)  # the store an ObservedStore wraps
    token_of = getattr(inner, "change_token", None)
    return token_of() if token_of is not None else None


class Shortcut:
    def __init__(self, key: str, files: list[tuple[str, int, int, int, int]], taken: int, token: Any,
                 store: Store) -> None:
        self.key, self.files, self.taken, self.token, self.store = key, files, taken, token, store

    @classmethod
    def begin(cls, paths: Any, store: Store, options: PlanOptions, strict: bool) -> Shortcut | None:
        """Before anything is read: the files' and the store's marks, or None (no shortcut). `paths`:
        manifest paths or a project's Layout without overlays; a validation already made has none."""
        from reconciler.project import Layout

        if isinstance(paths, Layout):
            if paths.overlays:
                return None
            given, exclude, root = tuple(paths.paths), tuple(paths.exclude), paths.exclude_root
        elif isinstance(paths, list | tuple) and all(isinstance(p, str) for p in paths):
            given, exclude, root = tuple(paths), (), "."
        else:
            return None
        if not cache.enabled():
            return None
        token = change_token(store)
        if token is None:
            return None
        from reconciler.manifest.loader import discover

        files, problems = discover(given, exclude, root)
        stats = cache.stat_files(files) if not problems else None
        if stats is None:
            return None
        key = cache.run_key("plan", given, exclude, root, store.url, repr(options), strict)
        return cls(key, stats[0], stats[1], token, store)

    def reuse(self, options: PlanOptions, resolver: SecretResolver) -> PlanOutcome | None:
        record = cache.load_run(self.key)
        if record is None or not self._same(record, resolver):
            return None
        from reconciler.manifest.model import Manifests
        from reconciler.plan import Plan
        from reconciler.run import PlanOutcome
        from reconciler.validate import ValidationResult

        try:
            validation = ValidationResult(list(record["diagnostics"]), Manifests(), [], len(self.files))
            plan = Plan(changes=[], state_fingerprint="", options=options, unmanaged=list(record["unmanaged"]),
                        not_selected=list(record["not_selected"]), notes=list(record["notes"]),
                        unverifiable=list(record["unverifiable"]))
        except (KeyError, TypeError):
            return None
        validation.cached = len(self.files)
        return PlanOutcome(validation, plan, reused=True)

    def _same(self, record: dict[str, Any], resolver: SecretResolver) -> bool:
        try:
            recorded = record["files"]
            if record["store"] != self.token or len(recorded) != len(self.files):
                return False
            for now, then in zip(self.files, recorded, strict=True):
                if now != tuple(then[:5]):
                    return False
                if then[5] is not None and not _same_bytes(now[0], then[5]):
                    return False
            views = [(ref, group, self._view(ref, group, resolver)) for ref, group in record["secrets"]]
            return bool(record["views"] == _digest(views))
        except (KeyError, TypeError, ValueError, IndexError):
            return False

    def _view(self, ref: str, group: str, resolver: SecretResolver) -> str | None:
        plaintext = resolver.try_resolve(ref)
        return None if plaintext is None else self.store.secret_view(plaintext, group)

    def remember(self, outcome: PlanOutcome, views: list[View]) -> None:
        """After a full run: keep it if it planned no change and the store did not move meanwhile."""
        plan = outcome.plan
        if not plan.empty or plan.refusal or outcome.validation is None:
            cache.forget_run(self.key)
            return
        if change_token(self.store) != self.token:
            return
        digests = outcome.validation.digests
        files = []
        for path, size, mtime, ctime, inode in self.files:
            recent = cache.racy(max(ctime, mtime), self.taken)
            confirm = digests.get(path) if recent else None
            if recent and confirm is None:
                return
            files.append((path, size, mtime, ctime, inode, confirm))
        cache.save_run(self.key, {
            "files": files,
            "store": self.token,
            "secrets": [(ref, group) for ref, group, _ in views],
            "views": _digest(views),
            "diagnostics": shown_diagnostics(outcome),
            "unmanaged": list(plan.unmanaged),
            "not_selected": list(plan.not_selected),
            "notes": list(plan.notes),
            "unverifiable": list(plan.unverifiable),
        })


def unchanged(paths: Any, store: Store, options: PlanOptions, strict: bool, resolver: SecretResolver) -> bool:
    """Whether the shortcut holds now (apply asks before it validates; under the lock, make_plan
    asks again, and plans in full if something changed meanwhile)."""
    shortcut = Shortcut.begin(paths, store, options, strict)
    return shortcut is not None and shortcut.reuse(options, resolver) is not None


def shown_diagnostics(outcome: PlanOutcome) -> list[Any]:
    """What a plan shows beside itself: validation's warnings and the price-book checks."""
    from reconciler.validate.pricebook import price_book_diagnostics

    if outcome.validation is None:
        return []
    found = list(outcome.validation.diagnostics)
    if outcome.desired is not None and outcome.actual is not None:
        found += price_book_diagnostics(outcome.validation.manifests, outcome.desired, outcome.actual)
    return found


def _same_bytes(path: str, digest: bytes) -> bool:
    from reconciler.manifest.loader import read_file

    raw, _ = read_file(path)
    return raw is not None and cache.digest(raw) == digest


def _digest(views: list[View]) -> str:
    return hashlib.sha256(repr(sorted(views, key=repr)).encode()).hexdigest()
