"""State -> manifest files: what `reconciler export` writes, and the emitter the importers share.

Export works from `Store.read()` alone, so it exports any store. It writes
what a person would: one file per provider (`providers/<name>.yaml`), the
models of each provider in one multi-document file (`models/<provider>.yaml`),
`prices/catalog.yaml`, `overrides.yaml` and `settings.yaml`, each with a
header comment and a `yaml-language-server` modeline, keys in schema order,
and every field that equals its default left out, so that planning the
exported files against the same store shows no changes.

Secrets become references, never values: the reference the store recorded
when there is one, else an environment variable with a derived name
(`secret_env_name`). Prices equal to the store's default price book are left
out. Model handles (`metadata.name`) are derived from the model ids.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import yaml

from reconciler.errors import UsageError
from reconciler.manifest.loader import API_VERSION
from reconciler.manifest.model import (
    CONTEXTS,
    default_base_url,
    default_compression_threshold,
)
from reconciler.planfile import write_atomic
from reconciler.prices import PRICE_FIELDS, from_micros
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
    prune_none,
)
from reconciler.stores.base import Store
from reconciler.validate.schema import SCHEMA_FILES, combined_schema, load_schema

SCHEMAS_DIR = "schemas"
MAX_NAME = 253  # Model metadata.name
_NOT_NAME = re.compile(r"[^a-z0-9._-]+")
_UNSAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")
_EDGES = re.compile(r"^[^a-z0-9]+|[^a-z0-9]+$")


# --- derived secret names ---------------------------------------------------------------------


def secret_env_name(provider: str, slot: str, position: int = 0) -> str:
    """The environment variable a secret without a recorded reference is exported as.

    `RECONCILER_<PROVIDER>_API_KEY_<N>` for the N-th API key (from 1), and
    `RECONCILER_<PROVIDER>_BEDROCK_ACCESS_KEY` / `..._BEDROCK_ACCESS_KEY_SECRET`
    for Bedrock's static credentials; PROVIDER is the provider's name in upper
    snake case (`anthropic-eu` -> `ANTHROPIC_EU`).
    """
    stem = "RECONCILER_" + re.sub(r"[^A-Z0-9]+", "_", provider.upper()).strip("_")
    if slot == "api_keys":
        return f"{stem}_API_KEY_{position}"
    if slot.startswith("header_"):  # a credential upstream header: ..._HEADER_X_GOOG_API_KEY
        return f"{stem}_{re.sub(r'[^A-Z0-9]+', '_', slot.upper()).strip('_')}"
    return f"{stem}_BEDROCK_{slot.upper()}"


# --- the emitter ------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style with indented sequences (`  - env: X`), as people write manifests."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # multi-line text as a literal block
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)

class _Multiline(Exception):
    """A string with a line break: its block scalar is left to the Python emitter."""


def _represent_str_c(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value or "\r" in value:
        raise _Multiline
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_CDumper: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CDumper(yaml.CSafeDumper):  # type: ignore[no-redef]
        """libyaml's emitter (about 10x faster); `_indent_sequences` gives it _Dumper's layout."""

    _CDumper.add_representer(str, _represent_str_c)


def dump_yaml(data: Any, flow: bool = False) -> str:
    options: dict[str, Any] = {"sort_keys": False, "default_flow_style": flow, "allow_unicode": True,
                               "width": 1_000_000}
    if _CDumper is not None and not flow:
        try:
            return _indent_sequences(yaml.dump(data, Dumper=_CDumper, **options))
        except _Multiline:
            pass
    return yaml.dump(data, Dumper=_Dumper, **options)


def _indent_sequences(text: str) -> str:
    """libyaml writes a block sequence under a mapping key at the key's column (`key:\n- a`);
    people (and _Dumper) indent it (`key:\n  - a`). Shift every line inside such a sequence by
    two columns per enclosing one. Exact for documents without multi-line scalars (every line
    is then a key, an item or a flow value, and no plain scalar starts with `- `)."""
    out: list[str] = []
    open_at: list[int] = []  # columns of the indentless sequences that enclose the current line
    key_column = -1  # column of the key that the previous line ended with (`key:`), else -1
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        column = len(line) - len(stripped)
        item = stripped.startswith("- ") or stripped == "-"
        while open_at and (open_at[-1] > column or (open_at[-1] == column and not item)):
            open_at.pop()
        if item and column == key_column and (not open_at or open_at[-1] != column):
            open_at.append(column)
        out.append(" " * (2 * len(open_at)) + line if stripped else line)
        key_column = -1
        if stripped.endswith(":"):
            body = stripped
            key_column = column
            while body.startswith("- "):
                body, key_column = body[2:], key_column + 2
    return "\n".join(out)


def ordered(data: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """`data` with mapping keys in the schema's property order (unknown keys after, sorted)."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(data, list):
        items = schema.get("items", {}) if isinstance(schema, dict) else {}
        return [ordered(item, items, root) for item in data]
    if not isinstance(data, dict):
        return data
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    extra = schema.get("additionalProperties") if isinstance(schema, dict) else None
    keys = [k for k in props if k in data] + sorted(k for k in data if k not in props)
    return {k: ordered(data[k], props.get(k, extra if isinstance(extra, dict) else {}), root)
            for k in keys}


def dump_document(doc: dict[str, Any]) -> str:
    """One manifest document as YAML: apiVersion, kind, metadata, spec; spec keys in schema order."""
    schema = load_schema(doc["kind"])
    return dump_yaml(ordered(doc, schema, schema))


def manifest(kind: str, name: str, spec: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A manifest document; `meta` gives its labels and annotations (left out when empty)."""
    metadata: dict[str, Any] = {"name": name}
    for part in ("labels", "annotations"):
        values = (meta or {}).get(part)
        if values:
            metadata[part] = dict(sorted(values.items()))
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


@dataclass
class ManifestFile:
    """A file to write: its path (relative, `/`-separated), a header comment and its documents.

    A document is a manifest dict, or YAML text already rendered (with comments of its own).
    """

    path: str
    kind: str  # the kind of its documents: picks the modeline's schema
    header: list[str]
    documents: list[dict[str, Any] | str]

    def body(self) -> str:
        comment = "".join(f"# {line}\n" if line else "#\n" for line in self.header)
        docs = [d if isinstance(d, str) else dump_document(d) for d in self.documents]
        return comment + "---\n".join(docs)

    def text(self, schema_ref: str) -> str:
        return f"# yaml-language-server: $schema={schema_ref}\n" + self.body()


def schema_id(kind: str) -> str:
    """The published `$id` of a kind's schema (for files written outside an output directory)."""
    return str(load_schema(kind)["$id"])


def local_schema_ref(path: str, kind: str) -> str:
    """The modeline path from `path` to the kind's schema in the `schemas/` folder beside the files."""
    return posixpath.relpath(f"{SCHEMAS_DIR}/{SCHEMA_FILES[kind]}", posixpath.dirname(path) or ".")


def render_stream(files: Iterable[ManifestFile]) -> str:
    """Every file's documents as one YAML stream (for stdout), its modeline on the combined schema."""
    return f"# yaml-language-server: $schema={combined_schema()['$id']}\n" + "---\n".join(f.body() for f in files)


def write_text(path: str, text: str) -> None:
    """Write a file atomically; a failure is a one-line error naming the file."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_files(files: list[ManifestFile], out_dir: str) -> list[str]:
    """Write `files` under `out_dir` with modelines to a `schemas/` folder written beside them.

    Refuses to overwrite an existing manifest file; schema files already there are left alone.
    Returns the paths written.
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"{out_dir} exists and is not a directory")
    existing = [f.path for f in files if os.path.exists(os.path.join(out_dir, f.path))]
    if existing:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise UsageError(f"{out_dir} already holds {shown}: refusing to overwrite; move them or "
                         "choose another --out")
    written = []
    for kind in sorted({f.kind for f in files}):
        target = os.path.join(out_dir, SCHEMAS_DIR, SCHEMA_FILES[kind])
        if not os.path.exists(target):
            write_text(target, json.dumps(load_schema(kind), indent=2) + "\n")
            written.append(target)
    for f in files:
        target = os.path.join(out_dir, *f.path.split("/"))
        write_text(target, f.text(local_schema_ref(f.path, f.kind)))
        written.append(target)
    return written


def file_stem(name: str) -> str:
    """A name as a file name: never a path separator or a leading dot."""
    return _UNSAFE_FILE.sub("_", name).lstrip(".") or "_"


# --- export -----------------------------------------------------------------------------------


@dataclass
class DerivedSecret:
    env: str  # the derived variable name
    where: str  # e.g. "provider openai, api_keys[1]"


@dataclass
class Export:
    files: list[ManifestFile] = field(default_factory=list)
    derived: list[DerivedSecret] = field(default_factory=list)  # secrets without a recorded reference
    notes: list[str] = field(default_factory=list)  # what could not be expressed, and was left out
    counts: Counter[str] = field(default_factory=Counter)  # what was written (and left out), for people


def export_store(store: Store) -> Export:
    """The store's manifests. Access lists are read for every model (one request each on Coder);
    a list that is what a new model gets anyway (the Everyone group alone) is left out, so that the
    manifests manage, and plans read, only the lists someone chose."""
    state = store.read()
    store.read_access(state, sorted(state.of(MODEL)))
    for record in state.of(MODEL).values():
        if record.get("access") == {"groups": ["Everyone"], "users": []}:
            del record["access"]
    return export_state(state)


def export_state(state: State) -> Export:
    """Manifests for everything in `state`, such that planning them against it shows no changes."""
    out = Export()
    names = model_names(state.of(MODEL))
    for (name,), record in sorted(state.of(PROVIDER).items()):
        _export_provider(out, state, name, record)
    models = _export_models(out, state, names)
    _export_prices(out, state, models)
    _export_overrides(out, state, names)
    if SETTINGS_KEY in state.of(SETTINGS):
        _export_settings(out, state, state.of(SETTINGS)[SETTINGS_KEY])
    return out


def _secret_ref(secret: Any, env: str, where: str, derived: list[DerivedSecret]) -> Any:
    """The reference the store recorded, else `{env: <derived name>}` (noted in `derived`)."""
    if isinstance(secret, Secret) and secret.ref:
        return secret.to_json()
    derived.append(DerivedSecret(env, where))
    return {"env": env}


def _default_base_url(record: Record) -> str | None:
    return normalize_url(default_base_url(record.get("type", ""), record.get("settings")))


def _export_provider(out: Export, state: State, name: str, record: Record) -> None:
    spec: dict[str, Any] = {"type": record.get("type")}
    if record.get("display_name") and record["display_name"] != name:
        spec["display_name"] = record["display_name"]
    if record.get("icon"):
        spec["icon"] = record["icon"]
    if record.get("enabled") is False:
        spec["enabled"] = False
    base_url = record.get("base_url")
    if base_url and normalize_url(base_url) != _default_base_url(record):
        spec["base_url"] = base_url
    derived: list[DerivedSecret] = []
    keys = [
        _secret_ref(secret, secret_env_name(name, "api_keys", n), f"api_keys[{n}]", derived)
        for n, secret in enumerate(record.get("api_keys") or [], 1)
    ]
    if keys:
        spec["api_keys"] = keys
    settings = _export_settings_block(name, record.get("settings"), derived)
    if settings:
        spec["settings"] = settings
    header = [f"Provider `{name}` (type {record.get('type')}), written by `reconciler export`.",
              "Fields equal to their defaults are left out."]
    if derived:
        header += ["", "The store recorded no reference for these secrets: set them before",
                   "`reconciler apply` (plan needs no values), or change the references:"]
        header += [f"  {d.env}  ({d.where})" for d in derived]
    out.derived += [DerivedSecret(d.env, f"provider {name}, {d.where}") for d in derived]
    doc = manifest("Provider", name, spec, state.meta.get((PROVIDER, (name,))))
    out.files.append(ManifestFile(f"providers/{file_stem(name)}.yaml", "Provider", header, [doc]))
    out.counts["providers"] += 1


def _export_settings_block(provider: str, settings: Any, derived: list[DerivedSecret]) -> dict[str, Any] | None:
    if not settings:
        return None
    block: dict[str, Any] = {}
    for variant, body in settings.items():
        body = {k: v for k, v in (body or {}).items() if v is not None}
        if variant == "bedrock":
            if body.get("protocol") == "invoke-model":
                del body["protocol"]  # the default
            for slot in ("access_key", "access_key_secret"):
                if slot in body:
                    where = f"settings.bedrock.{slot}"
                    body[slot] = _secret_ref(body[slot], secret_env_name(provider, slot), where, derived)
        if variant == "upstream_headers":
            for name, value in list(body.items()):
                if isinstance(value, Secret):
                    env = secret_env_name(provider, "header_" + name.replace("-", "_"))
                    body[name] = _secret_ref(value, env, f"settings.upstream_headers.{name}", derived)
        block[variant] = body
    return block


def slug(text: str) -> str:
    """A Model metadata.name from free text: lowercase, `[a-z0-9._-]`, alphanumeric at both ends."""
    name = _EDGES.sub("", _NOT_NAME.sub("-", text.lower()))
    return _EDGES.sub("", name[:MAX_NAME]) or "model"


def model_names(keys: Iterable[Key]) -> dict[Key, str]:
    """A unique handle per model key: the model id, else provider-model, else org-provider-model."""
    keys = sorted(keys)
    plain = Counter(slug(k[2]) for k in keys)
    qualified = Counter(slug(f"{k[1]}-{k[2]}") for k in keys)
    names: dict[Key, str] = {}
    taken: set[str] = set()
    for org, provider, model in keys:
        name = slug(model)
        if plain[name] > 1:
            name = slug(f"{provider}-{model}")
            if qualified[name] > 1:
                name = slug(f"{org}-{provider}-{model}")
        unique, n = name, 2
        while unique in taken:
            suffix = f"-{n}"
            unique, n = name[:MAX_NAME - len(suffix)] + suffix, n + 1
        taken.add(unique)
        names[(org, provider, model)] = unique
    return names


def _model_spec(state: State, key: Key, record: Record) -> dict[str, Any]:
    org, provider, model = key
    spec: dict[str, Any] = {}
    if org != state.default_organization:
        spec["organization"] = org
    spec["provider"], spec["model"] = provider, model
    if record.get("display_name") and record["display_name"] != model:
        spec["display_name"] = record["display_name"]
    if record.get("enabled") is False:
        spec["enabled"] = False
    if record.get("default"):
        spec["default"] = True
    limit = record.get("context_limit")
    spec["context_limit"] = limit
    threshold = record.get("compression_threshold")
    if threshold is not None and not (isinstance(limit, int) and threshold == default_compression_threshold(limit)):
        spec["compression_threshold"] = threshold
    config = prune_none(record.get("config") or {})
    if config:
        spec["config"] = config
    access = record.get("access")
    if isinstance(access, dict):
        spec["access"] = {part: list(access.get(part) or []) for part in ("groups", "users")}
    return spec


def _export_models(out: Export, state: State, names: dict[Key, str]) -> list[Key]:
    """One file per provider; returns the model keys in the order `validate` will load them."""
    by_file: dict[str, list[Key]] = defaultdict(list)
    for key in sorted(state.of(MODEL)):
        by_file[f"models/{file_stem(key[1])}.yaml"].append(key)
    loaded: list[Key] = []
    for path, keys in sorted(by_file.items()):
        provider = keys[0][1]
        docs: list[dict[str, Any] | str] = [
            manifest("Model", names[key], _model_spec(state, key, state.of(MODEL)[key]),
                     state.meta.get((MODEL, key)))
            for key in keys
        ]
        if (provider,) not in state.of(PROVIDER):
            out.notes.append(f"the models of provider {provider}, which the store does not hold, are in "
                             f"{path}: validate will report them")
        header = [f"Models served by provider `{provider}` (providers/{file_stem(provider)}.yaml), written",
                  "by `reconciler export`. `metadata.name` is the handle Overrides refer to.",
                  "Prices: prices/catalog.yaml."]
        out.files.append(ManifestFile(path, "Model", header, docs))
        out.counts["models"] += len(docs)
        loaded += keys
    return loaded


def _meta_key(meta: dict[str, Any] | None) -> str:
    """Labels and annotations as a sortable, hashable text: objects sharing them share a document."""
    meta = meta or {}
    return json.dumps([meta.get("labels") or {}, meta.get("annotations") or {}], sort_keys=True)


def _export_prices(out: Export, state: State, models: list[Key]) -> None:
    """The prices that differ from the default price book, as PriceCatalog entries, in one file.

    A price takes the labels and annotations of the first Model of its provider type and model
    id (see desired.py), so those entries need no labels of their own and go into one catalog;
    the others keep theirs through one catalog per distinct set.
    """
    types = {key[0]: str(record.get("type")) for key, record in state.of(PROVIDER).items()}
    first_model: dict[Key, Key] = {}
    for key in models:
        first_model.setdefault((types.get(key[1], ""), key[2]), key)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    unlabeled = _meta_key(None)
    for key in sorted(state.of(PRICE)):
        record = state.of(PRICE)[key]
        if state.default_prices.get(key) == record:
            out.counts["prices equal to the default price book, left out"] += 1
            continue
        entry: dict[str, Any] = {"provider": key[0], "model": key[1]}
        entry.update({f: from_micros(record.get(f)) for f in PRICE_FIELDS})
        meta = _meta_key(state.meta.get((PRICE, key)))
        if key in first_model:
            model = first_model[key]
            if meta != _meta_key(state.meta.get((MODEL, model))):
                out.notes.append(f"the price of {key[0]}/{key[1]} carries labels or annotations other than "
                                 f"those of its model {'/'.join(model)}, which a manifest cannot express")
            meta = unlabeled
        groups[meta].append(entry)
    docs: list[dict[str, Any] | str] = []
    for n, (meta, entries) in enumerate(sorted(groups.items(), key=lambda g: (g[0] != unlabeled, g[0]))):
        labels, annotations = json.loads(meta)
        docs.append(catalog_text("prices" if n == 0 else f"prices-{n + 1}",
                                 {"labels": labels, "annotations": annotations}, entries))
        out.counts["prices"] += len(entries)
    if docs:
        header = ["Prices in USD per 1M tokens, per provider TYPE + model id, written by",
                  "`reconciler export`. Only prices that differ from the store's default price",
                  "book are listed. Decimals are quoted strings (exact); null = unknown, \"0\" = free."]
        out.files.append(ManifestFile("prices/catalog.yaml", "PriceCatalog", header, docs))


def catalog_text(name: str, meta: dict[str, Any] | None, entries: list[dict[str, Any]]) -> str:
    """A PriceCatalog document, one flow-style entry per line, grouped by provider type."""
    head = manifest("PriceCatalog", name, {}, meta)
    del head["spec"]
    lines = [dump_yaml(head), "spec:\n", "  prices:\n"]
    for provider, group in groupby(entries, key=lambda entry: entry["provider"]):
        lines.append(f"    # --- {provider} ---\n")
        lines.append(_flow_items(list(group)))
    return "".join(lines)


def _flow_items(entries: list[dict[str, Any]]) -> str:
    """`    - {provider: …, model: …}` lines, one per entry, from one emitter call (the calls'
    overhead, not the entries, is what a per-entry call costs)."""
    options: dict[str, Any] = {"sort_keys": False, "default_flow_style": None, "allow_unicode": True,
                               "width": 1_000_000}
    try:
        text = yaml.dump(entries, Dumper=_CDumper or _Dumper, **options)
    except _Multiline:
        return "".join("    - " + dump_yaml(entry, flow=True) for entry in entries)
    return "".join(f"    {line}\n" for line in text.splitlines())


def _export_overrides(out: Export, state: State, names: dict[Key, str]) -> None:
    by_org: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    metas: dict[str, Counter[str]] = defaultdict(Counter)
    for (org, context), record in sorted(state.of(OVERRIDE).items()):
        name = names.get((org, record.get("provider", ""), record.get("model", "")))
        if name is None:
            out.notes.append(f"override {org}/{context} names model {record.get('provider')}/"
                             f"{record.get('model')}, which the store does not hold: left out")
            continue
        entry: dict[str, Any] = {"model": name}
        if record.get("reasoning_effort"):
            entry["reasoning_effort"] = record["reasoning_effort"]
        by_org[org][context] = entry
        metas[org][_meta_key(state.meta.get((OVERRIDE, (org, context))))] += 1
    rank = {c: i for i, c in enumerate(CONTEXTS)}
    docs: list[dict[str, Any] | str] = []
    for org, contexts in sorted(by_org.items()):
        spec: dict[str, Any] = {}
        if org != state.default_organization:
            spec["organization"] = org
        spec["contexts"] = dict(sorted(contexts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        (meta, _), *others = metas[org].most_common()
        if others:
            out.notes.append(f"the overrides of organization {org} carry different labels or annotations; "
                             "one Overrides document holds them all, with the most common ones")
        labels, annotations = json.loads(meta)
        docs.append(manifest("Overrides", slug(org), spec, {"labels": labels, "annotations": annotations}))
    if docs:
        header = ["Which model serves which Coder Agents context, one document per organization,",
                  "written by `reconciler export`. `model` is a Model's metadata.name (models/)."]
        out.files.append(ManifestFile("overrides.yaml", "Overrides", header, docs))
        out.counts["overrides documents"] += len(docs)


def _export_settings(out: Export, state: State, record: Record) -> None:
    spec = {"personal_model_overrides": {"allow_users": bool(record.get("allow_users"))}}
    doc = manifest("Settings", "deployment", spec, state.meta.get((SETTINGS, SETTINGS_KEY)))
    header = ["Deployment-wide settings, written by `reconciler export`."]
    out.files.append(ManifestFile("settings.yaml", "Settings", header, [doc]))
    out.counts["settings"] += 1


def write_export(export: Export, out_dir: str) -> list[str]:
    """Write an export into `out_dir`, which must be new or empty (it becomes a whole repository)."""
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise UsageError(f"{out_dir} is not empty: export writes a complete set of manifests; "
                         "choose a new or empty directory")
    return write_files(export.files, out_dir)
