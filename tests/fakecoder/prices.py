"""Model prices, experimental (coder-api.md §4): /api/experimental/ai/model-prices.

Integer micro-dollars per 1M tokens; `null` is unknown. Upsert only, no delete.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .access import PRICES_FEATURE, require
from .state import PRICE_FIELDS, ModelPrice, PriceKey, State
from .wire import (
    ApiError,
    FieldError,
    GoObject,
    Reply,
    Request,
    is_int,
    now,
    parse_uuid,
    validation_failed,
)

SUPPORTED_PROVIDERS = (
    "anthropic",
    "azure",
    "bedrock",
    "copilot",
    "google",
    "openai",
    "openrouter",
    "vercel",
)
_SUPPORTED_TEXT = ", ".join(SUPPORTED_PROVIDERS)
SOURCES = ("default", "custom", "all")
MAX_BODY_BYTES = 1 << 20
_INT64_LIMIT = 2**63


def price_json(price: ModelPrice) -> dict[str, Any]:
    return {
        "provider": price.provider,
        "provider_id": price.provider_id,
        "model": price.model,
        **price.prices,
        "source": price.source,
        "created_at": price.created_at,
        "updated_at": price.updated_at,
    }


def seed_default_prices(state: State, entries: Iterable[dict[str, Any]]) -> None:
    """Load entries of the embedded default price book (prices.json format)."""
    with state.lock:
        stamp = now()
        for entry in entries:
            key: PriceKey = (entry["provider"], None, entry["model"])
            prices = {name: entry.get(name) for name in PRICE_FIELDS}
            state.default_prices[key] = ModelPrice(
                entry["provider"], None, entry["model"], prices, "default", stamp, stamp
            )


def _premium(state: State) -> None:
    """Model prices are a premium feature: 403 without the entitlement (RequireFeatureMW)."""
    if not state.features.get(PRICES_FEATURE):
        raise ApiError(403, "Model prices is a Premium feature. Contact sales!")


def list_prices(state: State, req: Request) -> Reply:
    _premium(state)
    require(state, "ai_model_price", "read")
    source = req.query.get("source", "")
    if source and source not in SOURCES:
        raise ApiError(400, f'Invalid source "{source}".', f"Must be one of {', '.join(SOURCES)}.")
    provider = req.query.get("provider", "")
    if provider and provider not in SUPPORTED_PROVIDERS:
        raise ApiError(
            400, f'Provider "{provider}" is not supported. Supported providers: {_SUPPORTED_TEXT}.'
        )
    provider_id = req.query.get("provider_id", "")
    if provider_id and parse_uuid(provider_id) is None:
        raise ApiError(400, f'Invalid UUID "{provider_id}".')
    model = req.query.get("model", "")

    if source == "default":
        prices = list(state.default_prices.values())
    elif source == "custom":
        prices = list(state.custom_prices.values())
    elif source == "all":
        prices = [*state.default_prices.values(), *state.custom_prices.values()]
    else:
        effective = {**state.default_prices, **state.custom_prices}
        prices = list(effective.values())
    selected = [
        p
        for p in prices
        if (not provider or p.provider == provider)
        and (not provider_id or p.provider_id == parse_uuid(provider_id))
        and (not model or p.model == model)
    ]
    selected.sort(key=lambda p: (p.provider, p.model, p.provider_id or "", p.source))
    return Reply(200, [price_json(p) for p in selected])


def _entry_errors(
    state: State, index: int, entry: GoObject
) -> tuple[PriceKey | None, list[FieldError]]:
    where = f"prices[{index}]"
    errors: list[FieldError] = []
    provider = (entry.string("provider") or "").strip()
    provider_id = entry.uuid("provider_id")
    model = (entry.string("model") or "").strip()
    if provider_id is not None:
        configured = state.active_provider(provider_id)
        if configured is None:
            detail = "Provider ID does not match a configured AI provider."
            errors.append(FieldError(f"{where}.provider_id", detail))
        elif provider and provider != configured.type:
            detail = f'Provider "{provider}" does not match the type of the referenced AI provider.'
            errors.append(FieldError(f"{where}.provider", detail))
        else:
            provider = configured.type
    elif not provider:
        detail = f"Provider is required. Supported providers: {_SUPPORTED_TEXT}."
        errors.append(FieldError(f"{where}.provider", detail))
    elif provider not in SUPPORTED_PROVIDERS:
        detail = f'Provider "{provider}" is not supported. Supported providers: {_SUPPORTED_TEXT}.'
        errors.append(FieldError(f"{where}.provider", detail))
    if not model:
        errors.append(FieldError(f"{where}.model", "Model is required."))

    present = [name for name in PRICE_FIELDS if name in entry.data]
    for name in PRICE_FIELDS:
        value = entry.data.get(name)
        if name not in entry.data and present:
            detail = "Price is required. Use 'null' for a price that is not known."
            errors.append(FieldError(f"{where}.{name}", detail))
        elif value is not None and value < 0:
            errors.append(FieldError(f"{where}.{name}", "Price must not be negative."))
    if all(entry.data.get(name) is None for name in PRICE_FIELDS):
        detail = "At least one price must be set. Use 0 to declare a model free of charge."
        errors.append(FieldError(where, detail))
    key: PriceKey | None = (provider, provider_id, model) if not errors else None
    return key, errors


def upsert_prices(state: State, req: Request) -> Reply:
    _premium(state)
    require(state, "ai_model_price", "update")
    if len(req.raw_body) > MAX_BODY_BYTES:
        raise ApiError(413, "Request body too large.", f"The limit is {MAX_BODY_BYTES} bytes.")
    body = req.json_object("UpsertAIModelPricesRequest")
    entries = body.objects("prices", "AIModelPriceUpsert", req.ignored_fields) or []
    for entry in entries:
        for name in PRICE_FIELDS:
            value = entry.raw(name)
            if value is not None and not (is_int(value) and -_INT64_LIMIT <= value < _INT64_LIMIT):
                raise entry.type_error(name, value, "int64")
    if not entries:
        raise validation_failed(
            "Invalid AI model prices.",
            [FieldError("prices", "At least one model price is required.")],
        )

    errors: list[FieldError] = []
    accepted: dict[PriceKey, GoObject] = {}
    for index, entry in enumerate(entries):
        key, entry_errors = _entry_errors(state, index, entry)
        errors += entry_errors
        if key is None:
            continue
        if key in accepted:
            detail = f"{key[0]}/{key[2]} appears more than once."
            errors.append(FieldError(f"prices[{index}]", detail))
        accepted[key] = entry
    if errors:
        raise validation_failed("Invalid AI model prices.", errors)

    stamp = now()
    for key, entry in accepted.items():
        prices = {name: entry.data.get(name) for name in PRICE_FIELDS}
        existing = state.custom_prices.get(key)
        created = existing.created_at if existing is not None else stamp
        state.custom_prices[key] = ModelPrice(
            key[0], key[1], key[2], prices, "custom", created, stamp
        )
    return Reply(204)
