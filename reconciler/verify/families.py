"""How each provider type lists its models: the request (URL, auth header), the answer's shape.

Model listings are not billed by any of the upstreams. OpenAI-shaped types answer
`GET {base_url}/models` with `{"data": [{"id": ...}, ...]}`; Anthropic answers
`GET /v1/models` a page at a time (`has_more`, `last_id`, `?after_id=`); OpenRouter's
entries carry `context_length` and per-token `pricing`. OpenRouter and Vercel list
their models to anyone, so for OpenRouter the key is checked on `GET {base_url}/key`.

Nothing here does I/O: `check.py` sends the requests these functions describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from reconciler.manifest.model import OPENAI_SHAPED

ANTHROPIC_VERSION = "2023-06-01"
ANTHROPIC_PAGE = 1000
GATEWAY_ROUTE = "/api/v2/ai-gateway/{name}/v1"  # Coder's passthrough route of a provider

# the path prefix each type's base_url needs: what to say when the listing answers 404
EXPECTED_PREFIX = {
    "openai": "https://api.openai.com/v1 (path /v1)",
    "azure": "https://<resource>.openai.azure.com/openai/v1 (path /openai/v1)",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai (path /v1beta/openai)",
    "openrouter": "https://openrouter.ai/api/v1 (path /api/v1)",
    "vercel": "https://ai-gateway.vercel.sh/v1 (path /v1)",
    "openai-compat": "the server's OpenAI-compatible prefix, usually /v1 (e.g. http://host:8000/v1)",
    "anthropic": "https://api.anthropic.com with no path (the client adds /v1)",
}
# why a type is not checked directly (reason, what to do)
UNCHECKED = {
    "bedrock": "Bedrock requests are signed with AWS credentials (SigV4), which verify does not do yet",
    "copilot": "copilot uses each developer's own GitHub token (no key to check)",
}


class NotAModelList(ValueError):
    """An answer that is not the type's model list."""


@dataclass(frozen=True)
class Upstream:
    """One model as the upstream lists it; context window and prices when it says them."""

    id: str
    context_length: int | None = None
    prices: dict[str, Decimal] = field(default_factory=dict)  # USD per 1M tokens, by PRICE_FIELDS name


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None


def checkable(provider_type: str) -> bool:
    return provider_type in OPENAI_SHAPED or provider_type == "anthropic"


def auth_headers(provider_type: str, key: str) -> dict[str, str]:
    if provider_type == "anthropic":
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    if provider_type == "azure":
        return {"api-key": key}
    return {"Authorization": f"Bearer {key}"}


def api_root(provider_type: str, base_url: str) -> str:
    """Where the type's paths start: Anthropic's client adds /v1, OpenAI-shaped base URLs carry it."""
    root = base_url.rstrip("/")
    return root + "/v1" if provider_type == "anthropic" else root


def gateway_root(coder_url: str, name: str) -> str:
    return coder_url.rstrip("/") + GATEWAY_ROUTE.format(name=name)


def gateway_headers(provider_type: str, token: str) -> dict[str, str]:
    """Coder reads its token from `Authorization: Bearer` and puts the stored key in its place."""
    headers = {"Authorization": f"Bearer {token}"}
    if provider_type == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    return headers


def key_probe(provider_type: str, root: str, headers: dict[str, str]) -> Request | None:
    """A request that fails for a bad key where the model list would not (OpenRouter's is public)."""
    if provider_type == "openrouter":
        return Request("GET", root + "/key", headers)
    return None


def listing(root: str, headers: dict[str, str], after: str | None = None, paged: bool = False) -> Request:
    url = root + "/models"
    if paged:
        url += f"?limit={ANTHROPIC_PAGE}" + (f"&after_id={after}" if after else "")
    return Request("GET", url, headers)


def completion(provider_type: str, root: str, headers: dict[str, str], model: str) -> Request:
    """The smallest billed request that proves a model is served (`--live`)."""
    message = [{"role": "user", "content": "Reply with OK."}]
    if provider_type == "anthropic":
        return Request("POST", root + "/messages", headers, {"model": model, "max_tokens": 1, "messages": message})
    return Request("POST", root + "/chat/completions", headers,
                   {"model": model, "messages": message, "max_completion_tokens": 16})


def parse_page(data: Any, paged: bool) -> tuple[list[dict[str, Any]], str | None]:
    """(the entries of one answer, checked to be models; the cursor of the next page or None).
    Every key's listing is checked; only the one whose models are looked up is read further
    (`upstream_models`), which keeps 600 listings of 500 models cheap."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise NotAModelList("no `data` list")
    entries = data["data"]
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            raise NotAModelList("an entry of `data` has no string `id`")
    cursor = None
    if paged and data.get("has_more") is True:
        cursor = data.get("last_id")
        if not isinstance(cursor, str) or not cursor:
            raise NotAModelList("`has_more` without a `last_id`")
    return entries, cursor


def upstream_models(entries: list[dict[str, Any]]) -> list[Upstream]:
    return [Upstream(e["id"], _context_length(e), _prices(e.get("pricing"))) for e in entries]


def model_key(provider_type: str, model_id: str) -> str:
    """An id as the manifests name it: Google's OpenAI-compatible list says `models/gemini-…`."""
    return model_id.removeprefix("models/") if provider_type == "google" else model_id


# OpenRouter's per-token price names -> ours
_PRICE_NAMES = {"prompt": "input", "completion": "output", "input_cache_read": "cache_read",
                "input_cache_write": "cache_write"}


def _prices(pricing: Any) -> dict[str, Decimal]:
    """OpenRouter's USD-per-token strings as USD per 1M tokens (exact decimals). A price it does not
    state, or states as negative (`-1`: varies by route), is left out."""
    if not isinstance(pricing, dict):
        return {}
    out = {}
    for theirs, ours in _PRICE_NAMES.items():
        value = pricing.get(theirs)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        try:
            number = Decimal(value)
        except InvalidOperation:
            continue
        if number.is_finite() and number >= 0:
            out[ours] = (number * 1_000_000).normalize()
    return out


def _context_length(entry: dict[str, Any]) -> int | None:
    for name in ("context_length", "context_window", "max_input_tokens"):
        value = entry.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
