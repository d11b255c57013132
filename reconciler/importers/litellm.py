"""A LiteLLM price file -> a PriceCatalog, exactly.

LiteLLM's `model_prices_and_context_window.json` maps a model key to its
prices in USD per token (`input_cost_per_token`, `output_cost_per_token`,
`cache_read_input_token_cost`, `cache_creation_input_token_cost`), its
`litellm_provider` and its `mode`. A PriceCatalog holds USD per 1M tokens,
exact to the micro-dollar. The JSON numbers are read as decimals
(`parse_float=Decimal`, never binary floats) and scaled by 10^6 exactly:
3e-06 -> "3", 1.25e-07 -> "0.125". A price finer than a micro-dollar per 1M
tokens is not rounded: its entry is skipped, with a note.

Only chat models are converted (mode `chat`, and `responses`: OpenAI models
served through the Responses API, which the gateway proxies too), of the
LiteLLM providers that map onto a provider type (`LITELLM_PROVIDERS`). The
model id is the key without LiteLLM's routing prefix (`azure/gpt-4o` ->
`gpt-4o`); keys that still carry a route (a region or a deployment tier,
`azure/eu/gpt-4o`) are skipped. When two entries land on one provider type +
model with different prices, the provider listed first in `LITELLM_PROVIDERS`
wins (Gemini's own API over Vertex AI); a tie is skipped. Only base-tier prices
are carried over (not LiteLLM's `*_above_200k_tokens` tiers). A price LiteLLM
does not give is left out, to be filled from the default price book.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.errors import UsageError
from reconciler.export import ManifestFile, catalog_text
from reconciler.prices import PRICE_FIELDS, PriceError, from_micros, to_micros
from reconciler.state import Key

# (litellm_provider, or a prefix ending in "*"; provider type; routing prefixes of its keys), by precedence
LITELLM_PROVIDERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("openai", "openai", ("openai/",)),
    ("anthropic", "anthropic", ("anthropic/",)),
    ("azure", "azure", ("azure/",)),
    ("gemini", "google", ("gemini/",)),
    ("vertex_ai-language-models", "google", ("vertex_ai/",)),
    ("vertex_ai*", "google", ("vertex_ai/",)),
    ("bedrock", "bedrock", ("bedrock/",)),
    ("bedrock_converse", "bedrock", ("bedrock/converse/", "bedrock/")),
    ("openrouter", "openrouter", ("openrouter/",)),
    ("vercel_ai_gateway", "vercel", ("vercel_ai_gateway/",)),
)
SLASHLESS_IDS = ("openai", "anthropic", "azure", "google", "bedrock")  # a "/" left in the id is a route
MODES = ("chat", "responses")
COSTS = {"input": "input_cost_per_token", "output": "output_cost_per_token",
         "cache_read": "cache_read_input_token_cost", "cache_write": "cache_creation_input_token_cost"}
SAMPLE_SPEC = "sample_spec"

REASONS = {
    "sample": "LiteLLM's sample_spec (documentation, not a model)",
    "shape": "not a JSON object",
    "mode": "not a chat model",
    "provider": "provider not mapped onto a reconciler provider type",
    "route": "a LiteLLM route (region, tier or deployment), not a model id",
    "unpriced": "no input or output price per token",
    "invalid": "a price that is not a non-negative number",
    "inexact": "a price finer than a micro-dollar per 1M tokens (not rounded)",
    "duplicate": "the same provider type + model as a converted entry, same prices",
    "conflict": "the same provider type + model as another entry, different prices",
}


@dataclass(frozen=True)
class Skipped:
    entry: str  # the LiteLLM key
    reason: str  # a key of REASONS
    detail: str = ""


@dataclass(frozen=True)
class _Candidate:
    rank: int  # precedence of its LiteLLM provider
    entry: str
    provider: str  # litellm_provider
    fields: tuple[tuple[str, str], ...]  # (price field, USD per 1M tokens) given by the entry


@dataclass
class PriceImport:
    source: str
    entries: int  # entries in the file
    prices: dict[Key, dict[str, str]] = field(default_factory=dict)  # (type, model) -> field -> decimal
    origin: dict[Key, str] = field(default_factory=dict)  # (type, model) -> the LiteLLM key it came from
    skipped: list[Skipped] = field(default_factory=list)

    def catalog(self, name: str = "litellm-prices") -> ManifestFile:
        entries = [{"provider": t, "model": m, **self.prices[(t, m)]} for t, m in sorted(self.prices)]
        header = [f"Prices converted from {os.path.basename(self.source)} (LiteLLM) by `reconciler import-prices`:",
                  "USD per 1M tokens = LiteLLM's USD per token x 10^6, exactly. Base-tier prices of",
                  "chat models only; a price LiteLLM does not give is left out (the default price",
                  "book fills it). Decimals are quoted strings (exact)."]
        return ManifestFile(f"{name}.yaml", "PriceCatalog", header, [catalog_text(name, None, entries)])

    def summary(self) -> list[str]:
        """Lines for people: what was converted, and what was skipped, by reason, with examples."""
        lines = [f"Converted {len(self.prices)} prices from {self.entries} entries of {self.source}."]
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)}:")
            counts = Counter(s.reason for s in self.skipped)
            for reason, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                examples = [s for s in self.skipped if s.reason == reason][:3]
                shown = ", ".join(f"{s.entry} ({s.detail})" if s.detail else s.entry for s in examples)
                more = ", …" if count > len(examples) else ""
                lines.append(f"  {count:5d}  {REASONS[reason]}: {shown}{more}")
        return lines


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def load_price_file(path: str) -> dict[str, Any]:
    """The file's JSON with every number as an exact Decimal (or int)."""
    from reconciler.files import DATA_FILE_BYTES, read_regular

    try:
        data = json.loads(read_regular(path, DATA_FILE_BYTES).decode("utf-8"), parse_float=Decimal,
                          parse_constant=_reject_constant)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object mapping model keys to their prices")
    return data


def import_prices(path: str) -> PriceImport:
    data = load_price_file(path)
    result = PriceImport(path, len(data))
    candidates: dict[Key, list[_Candidate]] = {}
    for entry, spec in data.items():
        found = _candidate(entry, spec)
        if isinstance(found, Skipped):
            result.skipped.append(found)
        else:
            key, candidate = found
            candidates.setdefault(key, []).append(candidate)
    for key, entries in sorted(candidates.items()):
        _settle(key, entries, result)
    return result


def _provider(name: str) -> tuple[int, str, tuple[str, ...]] | None:
    for rank, (pattern, ptype, routes) in enumerate(LITELLM_PROVIDERS):
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return rank, ptype, routes
    return None


def _candidate(entry: str, spec: Any) -> tuple[Key, _Candidate] | Skipped:
    """The entry's provider type + model and prices, or why it is skipped."""
    if entry == SAMPLE_SPEC:
        return Skipped(entry, "sample")
    if not isinstance(spec, dict):
        return Skipped(entry, "shape")
    mode = spec.get("mode")
    if mode not in MODES:
        return Skipped(entry, "mode", f"mode {mode}" if isinstance(mode, str) else "no mode")
    litellm_provider = spec.get("litellm_provider")
    mapped = _provider(litellm_provider) if isinstance(litellm_provider, str) else None
    if mapped is None:
        return Skipped(entry, "provider", str(litellm_provider) if litellm_provider else "none given")
    rank, ptype, routes = mapped
    model = next((entry[len(r):] for r in routes if entry.startswith(r)), entry)
    if not model or (ptype in SLASHLESS_IDS and "/" in model):
        return Skipped(entry, "route")
    if all(spec.get(COSTS[f]) is None for f in ("input", "output")):
        return Skipped(entry, "unpriced")
    fields = []
    for name in PRICE_FIELDS:
        value = spec.get(COSTS[name])
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | Decimal) or value < 0:
            return Skipped(entry, "invalid", COSTS[name])
        per_million = format(Decimal(value).scaleb(6), "f")
        try:
            fields.append((name, str(from_micros(to_micros(per_million)))))
        except PriceError:
            return Skipped(entry, "inexact", f"{COSTS[name]} {value} = {per_million} per 1M")
    return (ptype, model), _Candidate(rank, entry, str(litellm_provider), tuple(fields))


def _settle(key: Key, found: list[_Candidate], result: PriceImport) -> None:
    """Keep one entry per provider type + model: the first by precedence, unless its peers disagree."""
    found = sorted(found, key=lambda c: (c.rank, c.entry))
    best = [c for c in found if c.rank == found[0].rank]
    if len({c.fields for c in best}) > 1:
        names = ", ".join(c.entry for c in best)
        result.skipped += [Skipped(c.entry, "conflict", f"with {names}") for c in found]
        return
    kept = best[0]
    result.prices[key] = dict(kept.fields)
    result.origin[key] = kept.entry
    for other in found[1:]:
        if other.fields == kept.fields:
            result.skipped.append(Skipped(other.entry, "duplicate", f"of {kept.entry}"))
        else:
            result.skipped.append(Skipped(other.entry, "conflict",
                                          f"kept {kept.entry} ({kept.provider} takes precedence)"))
