"""The five kinds as typed desired state. Every default of a manifest is applied here and only here.

`build_manifests()` takes documents that passed the schema pass, so shapes
and types are known to be right; semantic problems are the validator's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.manifest.loader import Document
from reconciler.secrets import Secret, ref_label

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1/",
    "anthropic": "https://api.anthropic.com/",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "openrouter": "https://openrouter.ai/api/v1/",
    "vercel": "https://ai-gateway.vercel.sh/v1",
    "copilot": "https://api.individual.githubcopilot.com",
}
OPENAI_SHAPED = ("openai", "azure", "google", "openai-compat", "openrouter", "vercel")
# provider_options family -> the provider types it fits
OPTION_FAMILIES = {
    "openai": ("openai", "azure"),
    "anthropic": ("anthropic", "bedrock"),
    "google": ("google",),
    "openaicompat": ("openai-compat",),
    "openrouter": ("openrouter",),
    "vercel": ("vercel",),
}
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
CONTEXTS = ("general", "explore", "title_generation", "compaction", "advisor")
LARGE_CONTEXT = 500_000


def default_compression_threshold(context_limit: int) -> int:
    """The gateway's own default: 70, or 30 for context windows of 500k tokens and more."""
    return 30 if context_limit >= LARGE_CONTEXT else 70


def bedrock_base_url(settings: dict[str, Any] | None) -> str | None:
    region = (settings or {}).get("bedrock", {}).get("region")
    if not region:
        return None
    if (settings or {}).get("bedrock", {}).get("protocol") == "mantle":
        return f"https://bedrock-mantle.{region}.api.aws/anthropic"
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def claude_platform_base_url(settings: dict[str, Any] | None) -> str | None:
    """Claude Platform for AWS's regional endpoint, for an anthropic provider with those settings."""
    region = (settings or {}).get("claude_platform_aws", {}).get("region")
    return f"https://aws-external-anthropic.{region}.api.aws" if region else None


def default_base_url(ptype: str, settings: dict[str, Any] | None) -> str | None:
    """The base URL a provider gets when its manifest gives none (None: the type has no default)."""
    if ptype == "bedrock":
        return bedrock_base_url(settings)
    if ptype == "anthropic" and "claude_platform_aws" in (settings or {}):
        return claude_platform_base_url(settings)
    return DEFAULT_BASE_URLS.get(ptype)


@dataclass(frozen=True)
class Meta:
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    doc: Document


@dataclass(frozen=True)
class Provider:
    meta: Meta
    type: str
    display_name: str
    icon: str
    enabled: bool
    base_url: str | None  # None when the type has no default and none was given
    api_keys: tuple[str, ...]  # references, "env:NAME" / "file:PATH"
    settings: dict[str, Any] | None  # {"bedrock": {...}} etc.; secret fields as references

    @property
    def name(self) -> str:
        return self.meta.name


@dataclass(frozen=True)
class Model:
    meta: Meta
    organization: str | None  # None = the store's default organization
    provider: str
    model: str
    display_name: str
    enabled: bool
    default: bool
    context_limit: int
    compression_threshold: int
    config: dict[str, Any]  # canonical (see `canonical`)
    pricing: dict[str, Any]  # only the fields the manifest gives; values as written
    book: Decimal | None = None  # `pricing: book` (1) or `{book: true, multiplier: m}`: the book price x m
    access: dict[str, list[str]] | None = None  # {"groups": [...], "users": [...]}, sorted; None: not managed

    @property
    def name(self) -> str:
        return self.meta.name


@dataclass(frozen=True)
class PriceEntry:
    doc: Document
    index: int  # position in spec.prices
    provider: str  # a provider type
    model: str
    fields: dict[str, Any]  # only the fields the entry gives; values as written
    priority: int = 0  # the catalog's spec.priority: the highest that gives a field wins


@dataclass(frozen=True)
class Overrides:
    meta: Meta
    organization: str | None
    contexts: dict[str, dict[str, Any]]  # context -> {"model": name, "reasoning_effort": str|None}


@dataclass(frozen=True)
class Settings:
    meta: Meta
    allow_users: bool


@dataclass
class Manifests:
    providers: list[Provider] = field(default_factory=list)
    models: list[Model] = field(default_factory=list)
    prices: list[PriceEntry] = field(default_factory=list)
    overrides: list[Overrides] = field(default_factory=list)
    settings: list[Settings] = field(default_factory=list)
    catalogs: list[Meta] = field(default_factory=list)
    # kind -> names of documents that failed the schema pass: references to them are not "unknown"
    invalid_names: dict[str, set[str]] = field(default_factory=dict)


def build_manifests(documents: list[Document]) -> Manifests:
    out = Manifests()
    for doc in documents:
        data = doc.data
        meta = _meta(doc)
        spec = data.get("spec") or {}
        kind = data["kind"]
        if kind == "Provider":
            out.providers.append(_provider(meta, spec))
        elif kind == "Model":
            out.models.append(_model(meta, spec))
        elif kind == "PriceCatalog":
            out.catalogs.append(meta)
            for index, entry in enumerate(spec.get("prices") or []):
                fields = {k: entry[k] for k in ("input", "output", "cache_read", "cache_write") if k in entry}
                priority = spec.get("priority", 0)
                out.prices.append(PriceEntry(doc, index, entry["provider"], entry["model"], fields, priority))
        elif kind == "Overrides":
            contexts = {
                ctx: {"model": value["model"], "reasoning_effort": value.get("reasoning_effort")}
                for ctx, value in (spec.get("contexts") or {}).items()
            }
            out.overrides.append(Overrides(meta, spec.get("organization"), contexts))
        elif kind == "Settings":
            allow = (spec.get("personal_model_overrides") or {}).get("allow_users", False)
            out.settings.append(Settings(meta, bool(allow)))
    return out


def _meta(doc: Document) -> Meta:
    metadata = doc.data.get("metadata") or {}
    return Meta(
        name=metadata.get("name", ""),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        doc=doc,
    )


def _provider(meta: Meta, spec: dict[str, Any]) -> Provider:
    ptype = spec["type"]
    settings = _settings(spec.get("settings"))
    base_url = spec.get("base_url")
    if base_url is None:
        base_url = default_base_url(ptype, settings)
    return Provider(
        meta=meta,
        type=ptype,
        display_name=spec.get("display_name") or meta.name,
        icon=spec.get("icon") or "",
        enabled=spec.get("enabled", True),
        base_url=base_url,
        api_keys=tuple(ref_label(k) for k in spec.get("api_keys") or []),
        settings=settings,
    )


BEDROCK_SECRETS = ("access_key", "access_key_secret")


def _settings(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    (variant, body), = raw.items()
    body = dict(body or {})
    if variant == "upstream_headers":  # a credential header's value is a secret reference
        body = {name: Secret(ref=ref_label(value)) if isinstance(value, dict) else value
                for name, value in body.items()}
    if variant == "bedrock":
        body.setdefault("protocol", "invoke-model")
        for secret in BEDROCK_SECRETS:
            if secret in body:
                body[secret] = ref_label(body[secret])
    return {variant: body}


def canonical(value: Any) -> Any:
    """A value as the stores hold it, at every depth: whole floats as ints (JSON Schema counts
    200000.0 as an integer, but the gateway, in Go, refuses it for an integer field; an int is fine
    where it expects a float), and no null-valued keys (an omitted option and a null one mean the same)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def _model(meta: Meta, spec: dict[str, Any]) -> Model:
    limit = canonical(spec["context_limit"])
    raw_pricing = spec.get("pricing") or {}
    threshold = canonical(spec.get("compression_threshold"))
    return Model(
        meta=meta,
        organization=spec.get("organization"),
        provider=spec["provider"],
        model=spec["model"],
        display_name=spec.get("display_name") or spec["model"],
        enabled=spec.get("enabled", True),
        default=spec.get("default", False),
        context_limit=limit,
        compression_threshold=default_compression_threshold(limit) if threshold is None else threshold,
        config=canonical(spec.get("config") or {}),
        pricing=dict(raw_pricing) if isinstance(raw_pricing, dict) and "book" not in raw_pricing else {},
        book=_book_multiplier(raw_pricing),
        access=access_value(spec.get("access")),
    )


def access_value(access: Any) -> dict[str, list[str]] | None:
    """`spec.access` as records hold it: both lists, sorted, without repeats; None when not given."""
    if not isinstance(access, dict):
        return None
    return {part: sorted(set(access.get(part) or [])) for part in ("groups", "users")}


def _book_multiplier(pricing: Any) -> Decimal | None:
    """`book` -> 1; `{book: true, multiplier: 0.8}` -> Decimal("0.8") (exactly as written); else None."""
    if pricing == "book":
        return Decimal(1)
    if isinstance(pricing, dict) and pricing.get("book") is True:
        multiplier = pricing.get("multiplier", 1)
        return Decimal(repr(multiplier)) if isinstance(multiplier, float) else Decimal(multiplier)
    return None
