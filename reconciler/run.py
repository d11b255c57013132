"""The commands as plain functions: what the CLI runs, and what tests and other programs can call.

plan and apply share `make_plan`, so a dry run and a real run cannot disagree.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler import __version__
from reconciler.apply import ApplyReport, apply_plan
from reconciler.desired import desired_state, source_of
from reconciler.diagnostics import sort_diagnostics
from reconciler.errors import ApplyCancelled, PlanFileError, ReconcilerError
from reconciler.plan import Plan, PlanOptions, compare
from reconciler.planfile import load_plan
from reconciler.project import Layout
from reconciler.provenance import run_source
from reconciler.secrets import SecretResolver
from reconciler.state import State
from reconciler.stores.base import ProgressCallback, RunInfo, Store
from reconciler.targeting import partial_note, scoped, target_scope
from reconciler.validate import ValidationResult, validate_paths


class InvalidManifests(ReconcilerError):
    """Validation found errors; the diagnostics travel with the exception."""

    def __init__(self, result: ValidationResult) -> None:
        super().__init__(f"{result.errors} error(s) in the manifests; nothing was planned")
        self.result = result


@dataclass
class PlanOutcome:
    validation: ValidationResult | None
    plan: Plan
    desired: State | None = None  # what the manifests ask for (before --select narrows it)
    actual: State | None = None  # the store's state planned against
    reused: bool = False  # the no-op shortcut answered (reconciler.noop): no states, only the plan


def holder_identity() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def make_plan(
    paths: Sequence[str] | Layout | ValidationResult, store: Store, options: PlanOptions, resolver: SecretResolver,
    strict: bool = False, reuse: bool = True,
) -> PlanOutcome:
    """`paths`: manifest paths, a project's Layout (base paths, an environment's overlays, excludes),
    or their validation already made (so that invalid manifests never open a store).

    `reuse`: answer from the no-op shortcut when it holds (reconciler.noop; paths, or a Layout
    without overlays); the outcome then has no states, so a caller that needs them (a saved plan,
    a cost report) passes False."""
    from reconciler.noop import Shortcut

    shortcut = Shortcut.begin(paths, store, options, strict) if reuse else None
    if shortcut is not None:
        reused = shortcut.reuse(options, resolver)
        if reused is not None:
            return reused
    validation = validated(paths)
    if not validation.ok(strict):
        raise InvalidManifests(validation)
    actual = store.read()
    views: list[tuple[str, str, str | None]] = []

    def view_of(ref: str, group: str) -> str | None:
        plaintext = resolver.try_resolve(ref)
        view = None if plaintext is None else store.secret_view(plaintext, group)
        views.append((ref, group, view))
        return view

    desired = desired_state(validation.manifests, actual, view_of)
    _read_access(store, desired, actual, validation)
    if not options.target:
        plan = compare(desired, actual, store.capabilities, options)
    else:
        scope = target_scope(options.target, validation.manifests, desired, actual)
        plan = compare(scoped(desired, scope), scoped(actual, scope), store.capabilities, options)
        plan.actual = actual  # a saved plan is checked against the whole store
        plan.notes.insert(0, partial_note(options.target, scope))
    refuse_in_plan(plan, store.refusals(plan.changes))
    _attach_sources(plan, desired, validation.paths)
    outcome = PlanOutcome(validation, plan, desired, actual)
    if shortcut is not None:
        shortcut.remember(outcome, views)
    return outcome


def _read_access(store: Store, desired: State, actual: State, validation: ValidationResult) -> None:
    """The access lists the manifests manage, read from the store; a name the store does not know
    is an error at its line (InvalidManifests), before anything is planned."""
    from reconciler.state import MODEL, MOVED_FROM, NO_META
    from reconciler.validate.access import access_diagnostics

    wanted = []
    for key, record in desired.of(MODEL).items():
        if "access" in record:
            wanted.append(key)
            hint = desired.meta.get((MODEL, key), NO_META)["annotations"].get(MOVED_FROM)
            if hint:
                provider, _, model = str(hint).partition("/")
                wanted.append((key[0], provider, model))
    if not wanted:
        return
    store.read_access(actual, wanted)
    unknown = access_diagnostics(validation.manifests, actual)
    if unknown:
        validation.diagnostics = sort_diagnostics([*validation.diagnostics, *unknown])
        raise InvalidManifests(validation)


def refuse_in_plan(plan: Plan, refused: dict[str, list[str]]) -> None:
    """Changes the store would refuse leave the plan, and the plan says why: apply refuses it,
    so that nothing is written and the same cause is given on every run until it is mended."""
    if not refused:
        return
    out = {change_id for ids in refused.values() for change_id in ids}
    plan.changes = [c for c in plan.changes if c.id not in out]
    lines = [f"{cause} ({_listed(ids)})" for cause, ids in sorted(refused.items())]
    plan.refusal = "\n".join(filter(None, [plan.refusal, *lines]))


def _listed(ids: list[str], shown: int = 3) -> str:
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")


def validated(paths: Sequence[str] | Layout | ValidationResult) -> ValidationResult:
    if isinstance(paths, ValidationResult):
        return paths
    return paths.validate() if isinstance(paths, Layout) else validate_paths(paths)


def _attach_sources(plan: Plan, desired: State, paths: Sequence[str]) -> None:
    """Each change's manifest, its file shown relative to the directory given that holds it (as the
    author sees it in the repository: `models/anthropic.yaml`)."""
    roots = [os.path.abspath(p) + os.sep for p in paths if os.path.isdir(p)]
    for change in plan.changes:
        source = source_of(desired, change.kind, change.key)
        if source is None:
            continue
        path = os.path.abspath(source["file"])
        root = next((r for r in roots if path.startswith(r)), None)
        plan.sources[change.id] = {**source, "file": path[len(root):] if root else source["file"]}


def apply_manifests(
    paths: Sequence[str] | Layout | ValidationResult,
    store: Store,
    options: PlanOptions,
    resolver: SecretResolver,
    lock_timeout: float,
    progress: ProgressCallback | None = None,
    strict: bool = False,
    approve: Callable[[Plan], bool] | None = None,
) -> tuple[PlanOutcome, ApplyReport]:
    """Plan and apply under the store's lock, so that the state planned against is the one written.
    `approve` (a person at a terminal) sees a plan with changes first; ApplyCancelled unless it agrees."""
    holder = holder_identity()
    with store.lock(lock_timeout, holder):
        outcome = make_plan(paths, store, options, resolver, strict)
        if approve is not None and not outcome.plan.empty and not outcome.plan.refusal \
                and not approve(outcome.plan):
            raise ApplyCancelled("apply cancelled: only 'yes' approves the plan; nothing was written")
        source = paths if isinstance(paths, Sequence) else paths.paths  # a Layout's or a validation's
        run = RunInfo(holder, __version__, outcome.plan.to_history(), run_source(source))
        return outcome, apply_plan(outcome.plan, store, resolver, run, progress)


def apply_saved(
    path: str,
    store: Store,
    resolver: SecretResolver,
    lock_timeout: float,
    progress: ProgressCallback | None = None,
) -> tuple[Plan, ApplyReport]:
    """Apply exactly the saved plan, or refuse it: a file not signed with the plan key, made for
    another store, or against a store that has changed since (including by this plan's own apply);
    a delete of a protected object, more deletes than its --max-deletes, or a record that
    validation refuses, all checked again against the live store."""
    plan, planned_for = load_plan(path)
    if planned_for != store.url:
        made_for = f"store {planned_for}" if planned_for else "no store at all"
        raise PlanFileError(f"{path} was made for {made_for}, not {store.url}: run plan against this store")
    holder = holder_identity()
    with store.lock(lock_timeout, holder):
        actual = store.read()
        from reconciler.state import MODEL

        store.read_access(actual, [key for c in plan.changes if c.kind == MODEL and "access" in (c.after or {})
                                   for key in (c.key, *([c.moved_from] if c.moved_from else []))])
        if actual.fingerprint() != plan.state_fingerprint:
            raise PlanFileError(
                f"{path} is stale: the store has changed since the plan was made (or the plan was applied "
                "already); run plan again"
            )
        problems = saved_plan_problems(plan, actual)
        problems += [f"{cause} ({_listed(ids)})" for cause, ids in sorted(store.refusals(plan.changes).items())]
        if problems:
            raise PlanFileError(f"{path} is refused, nothing was applied:\n  " + "\n  ".join(problems))
        run = RunInfo(holder, __version__, plan.to_history(), run_source([]))
        return plan, apply_plan(plan, store, resolver, run, progress)


def saved_plan_problems(plan: Plan, actual: State) -> list[str]:
    """Every reason the live store gives to refuse a saved plan, at once."""
    from reconciler.changes import DELETE, REPLACE
    from reconciler.revalidate import refused_writes

    problems = []
    removing = [c for c in plan.changes if c.action in (DELETE, REPLACE)]
    for change in removing:
        if actual.protected(change.kind, change.key):
            problems.append(f"{change.id} is protected (reconciler/protect: \"true\") and is never "
                            f"{'deleted' if change.action == DELETE else 'replaced'}")
    if len(removing) > plan.options.max_deletes:
        problems.append(f"it deletes or replaces {len(removing)} objects, more than its --max-deletes "
                        f"{plan.options.max_deletes}")
    for diagnostic in refused_writes(actual, plan.changes):
        where = diagnostic.path or "the document"
        problems.append(f"it would write what validation refuses: {diagnostic.file}: {where}: "
                        f"{diagnostic.message} [{diagnostic.code}]")
    return problems
