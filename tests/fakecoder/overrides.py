"""Admin model overrides per organization (coder-api.md §5) and the personal-override toggle.

/api/v2/organizations/{org}/chats/model-overrides[/{context}]
/api/v2/chats/config/personal-model-overrides
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .access import ADVISOR_EXPERIMENT, require, require_or_404
from .model_config import EFFORT_LEVELS, reasoning_efforts
from .organizations import organization_or_404
from .state import ChatModel, Organization, Override, State
from .wire import ApiError, Reply, Request, not_found, parse_uuid

ADMIN_CONTEXTS = ("general", "explore", "title_generation", "compaction", "advisor")
_NIL_UUID = "00000000-0000-0000-0000-000000000000"


def _override_json(context: str, override: Override) -> dict[str, Any]:
    out: dict[str, Any] = {"context": context, "model_config_id": override.model_config_id}
    if override.reasoning_effort:
        out["reasoning_effort"] = override.reasoning_effort
    return out


def list_overrides(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    overrides = [
        _override_json(context, state.overrides[(org.id, context)])
        for context in ADMIN_CONTEXTS
        if (org.id, context) in state.overrides
    ]
    return Reply(200, {"overrides": overrides})


def _invalid_effort(allowed: Sequence[str]) -> ApiError:
    return ApiError(400, "Invalid reasoning_effort value.", f"Must be one of {', '.join(allowed)}.")


def _selectable_model(state: State, org: Organization, ref: str) -> ChatModel:
    model_id = parse_uuid(ref)
    model = state.models.get(model_id) if model_id and model_id != _NIL_UUID else None
    if model is None or model.organization_id != org.id or not model.enabled:
        raise ApiError(400, "Invalid model_config_id.")
    return model


def put_override(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    context = req.params["context"]
    require_or_404(state, "chat_model_config", "update", org.id)
    if context == "advisor" and ADVISOR_EXPERIMENT not in state.experiments:
        raise not_found()
    if context not in ADMIN_CONTEXTS:
        raise ApiError(
            400, "Invalid model override context.", f"Must be one of {', '.join(ADMIN_CONTEXTS)}."
        )
    body = req.json_object("UpdateChatModelOverrideRequest")
    model_ref = body.string("model_config_id") or ""
    effort = body.string("reasoning_effort") or ""
    if effort and effort not in EFFORT_LEVELS:
        raise _invalid_effort(EFFORT_LEVELS)
    if not model_ref:
        if effort:
            raise ApiError(400, "reasoning_effort requires model_config_id.")
        state.overrides.pop((org.id, context), None)
        return Reply(200, {"context": context, "model_config_id": ""})

    model = _selectable_model(state, org, model_ref)
    if effort:
        allowed = reasoning_efforts(model.model_config)
        if not allowed:
            raise ApiError(400, "This model does not support reasoning effort.")
        if effort not in allowed:
            raise _invalid_effort(allowed)
    override = Override(model.id, effort or None)
    state.overrides[(org.id, context)] = override
    return Reply(200, _override_json(context, override))


def get_toggle(state: State, req: Request) -> Reply:
    require_or_404(state, "deployment_config", "read")
    return Reply(200, {"allow_users": state.allow_users})


def put_toggle(state: State, req: Request) -> Reply:
    require(state, "deployment_config", "update")
    body = req.json_object("ChatPersonalModelOverridesConfig")
    state.allow_users = body.boolean("allow_users") or False
    return Reply(204)
