"""Typed manifests -> desired `State`, normalised exactly as stores normalise actual state.

What the desired state depends on beyond the manifests comes from the actual
state: the store's default organization and its default price book. Secret
plaintexts are looked up here only to compute the store's view of them; the
plaintext itself goes no further.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.manifest.model import Manifests, Meta, Model
from reconciler.prices import PRICE_FIELDS, from_book, to_micros
from reconciler.secrets import Secret
from reconciler.state import (
    MODEL,
    OVERRIDE,
    PRICE,
    PROVIDER,
    SETTINGS,
    SETTINGS_KEY,
    Key,
    Record,
    State,
    normalize_url,
    object_meta,
)

# (reference, group) -> the store's view of the referenced value, or None when unknown
ViewOf = Callable[[str, str], "str | None"]


def desired_state(manifests: Manifests, actual: State, view_of: ViewOf) -> State:
    org = actual.default_organization
    state = State(default_organization=org, default_prices=actual.default_prices)
    provider_types = {p.name: p.type for p in manifests.providers}

    for p in manifests.providers:
        settings = None
        if p.settings:
            (variant, body), = p.settings.items()
            body = {
                k: Secret(v, view_of(v, "settings")) if k in ("access_key", "access_key_secret")
                else Secret(v.ref, view_of(v.ref or "", "settings")) if isinstance(v, Secret) else v
                for k, v in body.items()
            }
            settings = {variant: body}
        record = {
            "type": p.type,
            "display_name": p.display_name,
            "icon": p.icon,
            "enabled": p.enabled,
            "base_url": normalize_url(p.base_url),
            "api_keys": [Secret(ref, view_of(ref, "api_keys")) for ref in p.api_keys],
            "settings": settings,
        }
        _put(state, PROVIDER, (p.name,), record, p.meta)

    by_name: dict[str, Model] = {}
    for m in manifests.models:
        by_name[m.name] = m
        record = {
            "display_name": m.display_name,
            "enabled": m.enabled,
            "default": m.default,
            "context_limit": m.context_limit,
            "compression_threshold": m.compression_threshold,
            "config": m.config,  # canonical already (manifest.model.canonical)
        }
        if m.access is not None:
            record["access"] = m.access
        _put(state, MODEL, model_key(m, org), record, m.meta)

    for key, (record, meta) in _prices(manifests, provider_types, actual.default_prices).items():
        _put(state, PRICE, key, record, meta)

    for o in manifests.overrides:
        o_org = o.organization or org
        for context, value in o.contexts.items():
            target = by_name.get(value["model"])
            if target is None:
                continue  # reported by validation
            record = {
                "provider": target.provider,
                "model": target.model,
                "reasoning_effort": value.get("reasoning_effort"),
            }
            _put(state, OVERRIDE, (o_org, context), record, o.meta, f"context {context} -> Model {target.name}")

    for s in manifests.settings:
        _put(state, SETTINGS, SETTINGS_KEY, {"allow_users": s.allow_users}, s.meta)
    return state


def model_key(model: Model, default_org: str) -> Key:
    return (model.organization or default_org, model.provider, model.model)


def _put(state: State, kind: str, key: Key, record: Record, meta: Meta, detail: str = "") -> None:
    state.of(kind)[key] = record
    state.meta[(kind, key)] = object_meta(meta.labels, meta.annotations)
    state.sources[(kind, key)] = (meta, detail)  # made into an address only for the objects that change


def source_of(state: State, kind: str, key: Key) -> dict[str, Any] | None:
    """Where a manifest writes the object: {"manifest": "Model/claude-sonnet", "file", "line"[, "detail"]}."""
    found = state.sources.get((kind, key))
    if found is None:
        return None
    meta, detail = found
    out: dict[str, Any] = {"manifest": f"{meta.doc.kind}/{meta.name}", "file": meta.doc.file,
                           "line": meta.doc.line}
    if detail:
        out["detail"] = detail
    if kind in (PROVIDER, MODEL):
        spec = (meta.doc.data or {}).get("spec") or {}
        record = state.of(kind).get(key) or {}
        derived = sorted(name for name, value in record.items()
                         if name not in spec and value not in (None, "", [], {}) and name != "default")
        if derived:
            out["derived"] = derived  # values the author never wrote: defaults of the tool or the gateway
    return out


def _prices(
    manifests: Manifests, provider_types: dict[str, str], book: dict[Key, Record]
) -> dict[Key, tuple[Record, Meta]]:
    """Each priced key's four fields, filled from: the model's pricing, the catalogs, the price book.

    A catalog's `spec.priority` orders the layers (models' own pricing counts as 0; the highest
    first, ties in file order). Conflicts within a priority are validation errors; here the first
    layer that names a field wins. A key with no price at all is left out (there is nothing to write).
    """
    layers: dict[Key, list[tuple[int, dict[str, Any]]]] = {}
    metas: dict[Key, Meta] = {}
    for m in manifests.models:
        ptype = provider_types.get(m.provider)
        if ptype is None:
            continue
        key: Key = (ptype, m.model)
        layers.setdefault(key, []).append((0, m.pricing if m.book is None else from_book(book.get(key), m.book)))
        metas.setdefault(key, m.meta)
    catalog_meta = {id(meta.doc): meta for meta in manifests.catalogs}
    for entry in manifests.prices:
        key = (entry.provider, entry.model)
        layers.setdefault(key, []).append((entry.priority, entry.fields))
        metas.setdefault(key, catalog_meta[id(entry.doc)])
    out: dict[Key, tuple[Record, Meta]] = {}
    for key, ranked in layers.items():
        chosen: dict[str, Any] = {}
        given = [fields for _, fields in sorted(ranked, key=lambda layer: -layer[0])]  # stable: ties keep file order
        for layer in given:
            for name, value in layer.items():
                chosen.setdefault(name, value)  # the first layer that names a field wins
        booked = book.get(key, {})
        record = {name: to_micros(chosen[name]) if name in chosen else booked.get(name) for name in PRICE_FIELDS}
        if any(v is not None for v in record.values()):
            out[key] = (record, metas[key])
    return out
