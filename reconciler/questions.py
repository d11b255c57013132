"""`explain` and `cost` as plain functions: the questions reconciler answers beyond plan and apply."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.cost import CostReport, reprice
from reconciler.desired import desired_state, model_key
from reconciler.errors import UsageError
from reconciler.explain import CONTEXTS, Explanation, explain
from reconciler.prices import default_price_book
from reconciler.secrets import SecretResolver
from reconciler.state import PRICE, Key, State
from reconciler.stores.base import Store
from reconciler.validate import ValidationResult, validate_paths

NO_USAGE = "this store keeps no usage records: only a Coder store (coder+https://…) can price a change's cost"


@dataclass
class Sides:
    """What the questions need: the store's state, the manifests' state on top of it, and names."""

    actual: State | None
    desired: State | None
    names: dict[Key, str]
    validation: ValidationResult | None
    pinned: frozenset[tuple[str, str]] = frozenset()  # price keys the manifests give a price for


def read_sides(paths: Sequence[str] | Any, store: Store | None, resolver: SecretResolver) -> Sides:
    """Validate the manifests (when paths, or a layout with `validate()`, are given) and read the
    store (when one is given)."""
    from reconciler.run import InvalidManifests

    if hasattr(paths, "validate"):  # a project's layout: its paths, an environment's overlays, excludes
        validation = paths.validate(use_cache=False)
    elif paths:
        validation = validate_paths(paths, use_cache=False)
    else:
        validation = None
    if validation is not None and not validation.ok(False):
        raise InvalidManifests(validation)
    actual = store.read() if store is not None else None
    desired, names = None, {}
    if validation is not None:
        base = actual if actual is not None else State(default_prices=dict(default_price_book()))

        def view_of(ref: str, group: str) -> str | None:
            plaintext = resolver.try_resolve(ref) if store is not None else None
            return None if plaintext is None or store is None else store.secret_view(plaintext, group)

        desired = desired_state(validation.manifests, base, view_of)
        manifests = validation.manifests
        names = {model_key(m, base.default_organization): m.name for m in manifests.models}
        types = {p.name: p.type for p in manifests.providers}
        pinned = {(types.get(m.provider, ""), m.model) for m in manifests.models if m.pricing}
        pinned |= {(e.provider, e.model) for e in manifests.prices}
        return Sides(actual, desired, names, validation, frozenset(pinned))
    return Sides(actual, desired, names, validation)


def after_apply(actual: State | None, desired: State) -> State:
    """The store as an apply without --prune would leave it: the manifests' objects over the store's."""
    if actual is None:
        return desired
    merged = State(default_organization=actual.default_organization, default_prices=actual.default_prices)
    for kind, key, record in actual.items():
        merged.of(kind)[key] = record
    for kind, key, record in desired.items():
        merged.of(kind)[key] = record
    return merged


def explain_sides(sides: Sides, *, organization: str | None, user_view: object | None,
                  contexts: tuple[str, ...], diff: bool, show_keys: bool) -> list[Explanation]:
    out: list[Explanation] = []
    if sides.desired is not None:
        will = after_apply(sides.actual, sides.desired)
        pinned = {k: v for k, v in sides.desired.of(PRICE).items() if k in sides.pinned}  # type: ignore[misc]
        out.append(explain(will, side="manifests", organization=organization, user=user_view,  # type: ignore[arg-type]
                           contexts=contexts, names=sides.names, pinned=pinned, show_keys=show_keys))
    if sides.actual is not None and (diff or sides.desired is None):
        out.append(explain(sides.actual, side="store", organization=organization, user=user_view,  # type: ignore[arg-type]
                           contexts=contexts, names=sides.names, show_keys=show_keys))
    return out


def parse_contexts(chosen: str | None) -> tuple[str, ...]:
    if chosen is None:
        return CONTEXTS
    if chosen not in CONTEXTS:
        raise UsageError(f"unknown context {chosen!r}: one of {', '.join(CONTEXTS)}")
    return (chosen,)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `2w`, or an RFC 3339 / ISO date: the start of the period, in UTC."""
    now = now or datetime.now(UTC)
    found = re.fullmatch(r"\s*(\d{1,4})\s*([hdw])\s*", text)
    if found:
        amount, unit = int(found.group(1)), found.group(2)
        if amount == 0:
            raise UsageError("--since must be a positive duration such as 30d")
        hours = amount * {"h": 1, "d": 24, "w": 24 * 7}[unit]
        return now - timedelta(hours=hours)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: give a duration (30d, 12h, 2w) or a date (2026-11-01)") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment >= now:
        raise UsageError(f"--since {text!r} is not in the past")
    return moment.astimezone(UTC)


def cost_of_change(sides: Sides, store: Store, start: datetime, end: datetime | None = None) -> CostReport:
    end = end or datetime.now(UTC)
    since, until = start.strftime("%Y-%m-%d %H:%M UTC"), end.strftime("%Y-%m-%d %H:%M UTC")
    spend = getattr(store, "spend", None)
    if spend is None or sides.actual is None:
        return CostReport(since, until, (), NO_USAGE)
    rows = spend(start, end)
    return reprice(rows, sides.actual, sides.desired, since=since, until=until)
