"""Coder Agents chat models, organization-scoped (coder-api.md §3, generation B).

/api/v2/organizations/{org}/chats/models[/{model}]
"""

from __future__ import annotations

from typing import Any

from .access import require, require_or_404, visible
from .model_config import ModelConfigError, decode_model_config, reasoning_efforts
from .organizations import organization_or_404
from .state import ChatModel, Provider, State
from .wire import ApiError, GoObject, Reply, Request, new_id, not_found, now, parse_uuid

DEFAULT_COMPRESSION_THRESHOLD = 70
LARGE_CONTEXT_COMPRESSION_THRESHOLD = 30
LARGE_CONTEXT_LIMIT = 500_000
AGENTS_UNSUPPORTED_TYPES = frozenset({"copilot"})


def model_json(model: ChatModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": model.id,
        "organization_id": model.organization_id,
        "ai_provider_id": model.ai_provider_id,
        "model": model.model,
        "display_name": model.display_name,
        "enabled": model.enabled,
        "is_default": model.is_default,
        "context_limit": model.context_limit,
        "compression_threshold": model.compression_threshold,
    }
    if model.model_config is not None:
        out["model_config"] = model.model_config
    out["reasoning_efforts"] = reasoning_efforts(model.model_config)
    out["created_at"] = model.created_at
    out["updated_at"] = model.updated_at
    return out


def _descriptor(provider: Provider) -> dict[str, Any]:
    has_key = bool(provider.api_keys)
    keyless = provider.type == "bedrock" or (
        provider.settings is not None and provider.settings["_type"] == "wif"
    )
    out: dict[str, Any] = {
        "id": provider.id,
        "type": provider.type,
        "display_name": provider.display_name,
        "icon": provider.icon,
        "enabled": provider.enabled,
        "has_api_key": has_key,
        "has_user_api_key": False,
        "has_effective_api_key": has_key,
        "allow_user_api_key": False,
        "available": provider.enabled and (has_key or keyless),
    }
    if not (has_key or keyless):
        out["unavailable_reason"] = "missing_api_key"
    return out


def list_models(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    providers = [
        p
        for p in state.providers.values()
        if not p.deleted and p.type not in AGENTS_UNSUPPORTED_TYPES
    ]
    return Reply(
        200,
        {
            "models": [model_json(m) for m in state.org_models(org.id) if visible(state, m)],
            "providers": [_descriptor(p) for p in providers],
            "unsupported_providers": [],
        },
    )


def model_or_404(state: State, org_id: str, ref: str) -> ChatModel:
    model_id = parse_uuid(ref)
    if model_id is None:
        raise ApiError(400, f'Invalid UUID "{ref}".')
    model = state.models.get(model_id)
    if model is None or model.organization_id != org_id or not visible(state, model):
        raise not_found()
    return model


def get_model(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    return Reply(200, model_json(model_or_404(state, org.id, req.params["model"])))


def _usable_provider(state: State, provider_id: str) -> Provider:
    provider = state.active_provider(provider_id)
    if provider is None:
        raise ApiError(400, "Chat provider is not configured.")
    if provider.type in AGENTS_UNSUPPORTED_TYPES:
        raise ApiError(
            400,
            "Chat provider is not supported.",
            f"type={provider.type} providers cannot back Coder Agents models.",
        )
    return provider


def _model_config(body: GoObject) -> tuple[bool, dict[str, Any] | None]:
    """(sent, decoded) for the `model_config` field."""
    if not body.has("model_config"):
        return False, None
    try:
        return True, decode_model_config(body.raw("model_config"))
    except ModelConfigError as exc:
        raise ApiError(400, "Invalid model config.", str(exc)) from None


def _check_threshold(threshold: int | None) -> None:
    if threshold is not None and not 0 <= threshold <= 100:
        raise ApiError(
            400,
            "Invalid compression threshold.",
            "context_compression_threshold must be between 0 and 100",
        )


def _check_unique(state: State, model: ChatModel) -> None:
    for other in state.org_models(model.organization_id):
        if (
            other.id != model.id
            and other.ai_provider_id == model.ai_provider_id
            and other.model == model.model
        ):
            raise ApiError(409, "Chat model config already exists.")


def _make_default(state: State, model: ChatModel) -> None:
    for other in state.org_models(model.organization_id):
        other.is_default = other.id == model.id


def _ensure_default(state: State, org_id: str, avoid: str | None = None) -> None:
    """Keep exactly one default per organization, preferring enabled models."""
    models = state.org_models(org_id)
    if not models or any(m.is_default for m in models):
        return
    ranked = sorted(models, key=lambda m: (m.id == avoid, not m.enabled))
    ranked[0].is_default = True


def create_model(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    require(state, "chat_model_config", "create", org.id)
    body = req.json_object("CreateChatModelRequest")
    provider_id = body.uuid("ai_provider_id")
    name = (body.string("model") or "").strip()
    display_name = (body.string("display_name") or "").strip()
    enabled = body.boolean("enabled")
    is_default = body.boolean("is_default")
    context_limit = body.integer("context_limit")
    threshold = body.integer("compression_threshold", bits=32)
    _, config = _model_config(body)

    if provider_id is None:
        raise ApiError(400, "AI provider ID is required.")
    if not name:
        raise ApiError(400, "Model is required.")
    if context_limit is None or context_limit <= 0:
        raise ApiError(
            400, "Context limit is required.", "context_limit must be greater than zero."
        )
    _check_threshold(threshold)
    _usable_provider(state, provider_id)
    if threshold is None:
        large = context_limit >= LARGE_CONTEXT_LIMIT
        threshold = LARGE_CONTEXT_COMPRESSION_THRESHOLD if large else DEFAULT_COMPRESSION_THRESHOLD

    stamp = now()
    model = ChatModel(
        id=new_id(),
        organization_id=org.id,
        ai_provider_id=provider_id,
        model=name,
        display_name=display_name or name,
        enabled=True if enabled is None else enabled,
        is_default=False,
        context_limit=context_limit,
        compression_threshold=threshold,
        model_config=config,
        created_at=stamp,
        updated_at=stamp,
        group_acl={org.id: "read"},  # the Everyone group
    )
    _check_unique(state, model)  # not access-aware: a model the token cannot see answers 409 too
    first_in_org = not state.org_models(org.id)
    state.models[model.id] = model
    if is_default or first_in_org:
        _make_default(state, model)
    return Reply(201, model_json(model))


def update_model(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    model = model_or_404(state, org.id, req.params["model"])
    require_or_404(state, "chat_model_config", "update", org.id)
    body = req.json_object("UpdateChatModelRequest")
    provider_id = body.uuid("ai_provider_id")
    name = (body.string("model") or "").strip()
    display_name = (body.string("display_name") or "").strip()
    enabled = body.boolean("enabled")
    is_default = body.boolean("is_default")
    context_limit = body.integer("context_limit")
    threshold = body.integer("compression_threshold", bits=32)
    config_sent, config = _model_config(body)

    if context_limit is not None and context_limit <= 0:
        raise ApiError(400, "Context limit must be greater than zero.")
    _check_threshold(threshold)
    if provider_id is not None:
        _usable_provider(state, provider_id)

    updated = ChatModel(
        id=model.id,
        organization_id=model.organization_id,
        ai_provider_id=provider_id or model.ai_provider_id,
        model=name or model.model,
        display_name=display_name or model.display_name,
        enabled=model.enabled if enabled is None else enabled,
        is_default=model.is_default,
        context_limit=model.context_limit if context_limit is None else context_limit,
        compression_threshold=model.compression_threshold if threshold is None else threshold,
        model_config=config if config_sent else model.model_config,
        created_at=model.created_at,
        updated_at=now(),
        group_acl=model.group_acl,
        user_acl=model.user_acl,
    )
    _check_unique(state, updated)
    state.models[model.id] = updated
    if is_default:
        _make_default(state, updated)
    elif is_default is False and updated.is_default:
        updated.is_default = False
        _ensure_default(state, org.id, avoid=updated.id)
    return Reply(200, model_json(updated))


def delete_model(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    model = model_or_404(state, org.id, req.params["model"])
    require_or_404(state, "chat_model_config", "delete", org.id)
    del state.models[model.id]
    _ensure_default(state, org.id)
    return Reply(204)
