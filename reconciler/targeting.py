"""`--target Kind/name`: a partial plan of some manifests and what they depend on (Terraform's -target).

A target names a manifest by its kind and `metadata.name` (`Provider/openai`,
`Model/claude-sonnet`, `Overrides/defaults`, `PriceCatalog/list-prices`,
`Settings/deployment`). The plan covers the store objects those manifests write
and what must be right for them to work:

- a Model: its Provider, its price, and the overrides that route to it (a model
  replaced or renamed must take its overrides along);
- an Overrides: each of its contexts, and each context's Model (as above);
- a PriceCatalog: its prices; a Provider, a Settings: themselves.

A Provider target with no manifest names the store's provider of that name, so
`--target Provider/old --prune` deletes just it. Everything outside the scope is
left out of the plan entirely (a targeted plan is partial, and says so). A target
that names nothing is an error. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from reconciler.desired import model_key
from reconciler.errors import ReconcilerError
from reconciler.manifest.model import Manifests, Model
from reconciler.state import MODEL, OVERRIDE, PRICE, PROVIDER, SETTINGS, SETTINGS_KEY, Key, State

KINDS = ("Provider", "Model", "Overrides", "PriceCatalog", "Settings")
Scope = frozenset[tuple[str, Key]]


class TargetError(ReconcilerError):
    """A --target that is malformed or names nothing."""


def parse_target(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition("/")
    if not sep or not name or "/" in name:
        raise TargetError(f"--target {text!r}: expected Kind/name (e.g. Model/claude-sonnet)")
    if kind not in KINDS:
        raise TargetError(f"--target {text!r}: {kind!r} is not a manifest kind ({', '.join(KINDS)})")
    return kind, name


def target_scope(targets: Iterable[str], manifests: Manifests, desired: State, actual: State) -> Scope:
    """Every (kind, store key) the targets and what they depend on cover."""
    org = desired.default_organization
    types = {p.name: p.type for p in manifests.providers}
    models = {m.name: m for m in manifests.models}
    scope: set[tuple[str, Key]] = set()
    unknown: list[str] = []

    def add_model(m: Model) -> None:
        scope.add((MODEL, model_key(m, org)))
        scope.add((PROVIDER, (m.provider,)))
        if m.provider in types and (types[m.provider], m.model) in desired.of(PRICE):
            scope.add((PRICE, (types[m.provider], m.model)))
        for o in manifests.overrides:
            for context, value in o.contexts.items():
                if value["model"] == m.name:
                    scope.add((OVERRIDE, (o.organization or org, context)))

    for text in targets:
        kind, name = parse_target(text)
        found = True
        if kind == "Provider":
            found = name in types or (name,) in actual.of(PROVIDER)
            scope.add((PROVIDER, (name,)))
        elif kind == "Model":
            found = name in models
            if found:
                add_model(models[name])
        elif kind == "Overrides":
            chosen = [o for o in manifests.overrides if o.meta.name == name]
            found = bool(chosen)
            for o in chosen:
                for context, value in o.contexts.items():
                    scope.add((OVERRIDE, (o.organization or org, context)))
                    if value["model"] in models:
                        add_model(models[value["model"]])
        elif kind == "PriceCatalog":
            docs = {id(meta.doc) for meta in manifests.catalogs if meta.name == name}
            found = bool(docs)
            scope.update((PRICE, (e.provider, e.model)) for e in manifests.prices if id(e.doc) in docs)
        else:
            found = any(s.meta.name == name for s in manifests.settings)
            scope.add((SETTINGS, SETTINGS_KEY))
        if not found:
            unknown.append(text)
    if unknown:
        raise TargetError(f"--target {', '.join(unknown)}: no manifest has that kind and metadata.name"
                          + (" (nor does the store hold such a provider)" if any(
                              u.startswith("Provider/") for u in unknown) else ""))
    return frozenset(scope)


def scoped(state: State, scope: Scope) -> State:
    """The objects of `state` in the scope (metadata along); everything else the state knows is kept."""
    objects: dict[str, dict[Key, Any]] = {kind: {} for kind in state.objects}
    meta = {}
    for kind, key, record in state.items():
        if (kind, key) in scope:
            objects[kind][key] = record
            if (kind, key) in state.meta:
                meta[(kind, key)] = state.meta[(kind, key)]
    return replace(state, objects=objects, meta=meta)


def partial_note(targets: Iterable[str], scope: Scope) -> str:
    return (f"this plan is partial: only --target {', '.join(targets)} and what they depend on "
            f"({len(scope)} objects) were planned; other changes and drift are not shown. Run plan without "
            "--target to see everything")
