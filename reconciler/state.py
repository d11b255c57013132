"""Canonical state: where desired state (manifests) and actual state (a store) meet.

A `State` maps each kind to `{key: record}`; a record is a JSON-like dict whose
fields are normalised identically on both sides, so that comparing two states
is `==` on records. Secret slots hold `Secret` objects (see secrets.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reconciler.secrets import Secret

Key = tuple[str, ...]
Record = dict[str, Any]

PROVIDER, MODEL, PRICE, OVERRIDE, SETTINGS = "Provider", "Model", "Price", "Override", "Settings"
KIND_ORDER = (PROVIDER, MODEL, PRICE, OVERRIDE, SETTINGS)  # dependency order; deletes run reversed
SETTINGS_KEY: Key = ("deployment",)
PROVIDER_FIELDS = ("type", "display_name", "icon", "enabled", "base_url", "api_keys", "settings")
MODEL_FIELDS = ("display_name", "enabled", "default", "context_limit", "compression_threshold", "config")
OVERRIDE_FIELDS = ("provider", "model", "reasoning_effort")

NO_META: dict[str, Any] = {"labels": {}, "annotations": {}}  # an object's metadata when it has none; never mutated
PROTECT = "reconciler/protect"  # the annotation that guards an object against delete and replace
MOVED_FROM = "reconciler/moved-from"  # on a Model: "<provider>/<model>" it was before, kept in place


def object_meta(labels: dict[str, Any] | None, annotations: dict[str, Any] | None) -> dict[str, Any]:
    """An object's metadata as `State.meta` holds it: labels and annotations, both always there."""
    return {"labels": labels or {}, "annotations": annotations or {}}


# (view of a plaintext) -> the store's view, or None when the store cannot tell
SecretViewer = Callable[[str], "str | None"]


@dataclass
class State:
    """Objects by kind and key, plus what the store knows beyond them."""

    objects: dict[str, dict[Key, Record]] = field(default_factory=lambda: {k: {} for k in KIND_ORDER})
    default_organization: str = "default"
    # the store's default price book: (provider type, model) -> price record
    default_prices: dict[Key, Record] = field(default_factory=dict)
    # (kind, key) -> {"labels": {...}, "annotations": {...}}, both always there; not compared
    meta: dict[tuple[str, Key], dict[str, Any]] = field(default_factory=dict)
    # what changes whenever the store is written, beyond its objects (an apply counter, the
    # server's update times), so that a saved plan cannot run twice on an A -> B -> A store
    serial: str = ""
    # organization -> {"groups": [names], "users": [names]} the store knows, for checking `access`;
    # None where the store cannot tell (SQL stores take any name)
    principals: dict[str, dict[str, list[str]]] | None = None
    # (provider type, model, provider name) -> the price one provider is billed at instead of its
    # type's price (Coder's per-provider prices); no manifest sets these yet, so they are not objects
    provider_prices: dict[tuple[str, str, str], Record] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the store says about what it could not see
    # desired state only: (kind, key) -> (the manifest's Meta, a detail) (see desired.source_of)
    sources: dict[tuple[str, Key], tuple[Any, str]] = field(default_factory=dict)

    def of(self, kind: str) -> dict[Key, Record]:
        return self.objects.setdefault(kind, {})

    def protected(self, kind: str, key: Key) -> bool:
        """Whether the object carries `reconciler/protect: "true"`."""
        annotations = self.meta.get((kind, key), NO_META)["annotations"]
        return str(annotations.get(PROTECT, "")).lower() == "true"

    def move_model(self, old: Key, new: Key) -> None:
        """The model at `old` as it is once moved to `new` in place: its record, metadata and
        the overrides that name it follow it (a store keeps the model's identity)."""
        models = self.of(MODEL)
        models[new] = models.pop(old)
        if (MODEL, old) in self.meta:
            self.meta[(MODEL, new)] = self.meta.pop((MODEL, old))
        for key, record in self.of(OVERRIDE).items():
            if key[0] == old[0] and (record.get("provider"), record.get("model")) == old[1:]:
                self.of(OVERRIDE)[key] = dict(record, provider=new[1], model=new[2])

    def items(self) -> Iterator[tuple[str, Key, Record]]:
        for kind in KIND_ORDER:
            for key, record in self.of(kind).items():
                yield kind, key, record

    def count(self) -> int:
        return sum(len(v) for v in self.objects.values())

    def fingerprint(self, serial: bool = True) -> str:
        """A digest of the objects, their labels and annotations, and the store's serial, so that a
        saved plan can tell the store has changed (and cannot run twice). Without `serial`: of the
        contents alone (two stores, or one store at two times, that hold the same)."""
        digest = hashlib.sha256()
        if serial:
            digest.update(json.dumps(["serial", self.serial]).encode() + b"\n")
        for kind in KIND_ORDER:
            for key in sorted(self.of(kind)):
                meta = self.meta.get((kind, key), NO_META)
                record = self.of(kind)[key]
                if "access" in record:  # read only for some models (Coder): a write checks it instead
                    record = {k: v for k, v in record.items() if k != "access"}
                line = json.dumps([kind, list(key), record, meta], sort_keys=True, default=_view_json)
                digest.update(line.encode())
                digest.update(b"\n")
        return "sha256:" + digest.hexdigest()


def _view_json(value: Any) -> Any:
    if isinstance(value, Secret):
        return {"$view": value.view}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def key_text(key: Key) -> str:
    return "/".join(key)


def normalize_url(url: str | None) -> str | None:
    """Scheme and host in lower case, no trailing slash: spellings that mean the same compare equal."""
    if not url:
        return url
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


def prune_none(value: Any) -> Any:
    """Drop None-valued keys at every depth (an omitted option and a null one mean the same)."""
    if isinstance(value, dict):
        return {k: prune_none(v) if isinstance(v, dict | list) else v for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_none(v) if isinstance(v, dict | list) else v for v in value]
    return value


def to_json(value: Any) -> Any:
    """A record as plain JSON: secret slots become `{"$secret": ref}` (never a value)."""
    if isinstance(value, Secret):
        return {"$secret": value.ref}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """The inverse of `to_json` (secret slots come back as references without a view)."""
    if isinstance(value, dict):
        if set(value) == {"$secret"}:
            return Secret(ref=value["$secret"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def secret_slot_paths(record: Record) -> Iterator[tuple[str, str, Secret]]:
    """(slot, group, secret) for each secret slot of a record. The slot names the position
    (`api_keys/0`, `settings/bedrock/access_key`); the group is what a write must resend."""
    for position, item in enumerate(record.get("api_keys") or []):
        yield f"api_keys/{position}", "api_keys", item
    for variant, body in (record.get("settings") or {}).items():
        for name, value in (body or {}).items():
            if isinstance(value, Secret):
                yield f"settings/{variant}/{name}", "settings", value


def secret_slots(record: Record) -> Iterator[tuple[str, Secret]]:
    """(group, secret) for each secret slot of a record."""
    for _, group, secret in secret_slot_paths(record):
        yield group, secret
