"""Who may do what, as Coder decides it: the token's permissions, experiments, entitlements,
`POST /api/v2/authcheck`, and each model's access list.

/api/v2/experiments                                       ["chat-advisor", ...]
/api/v2/entitlements                                      {features: {name: {entitlement, enabled}}, ...}
/api/v2/authcheck                                         {checks: {key: {object, action}}} -> {key: bool}
/api/v2/organizations/{org}/members                       the organization's members
/api/v2/organizations/{org}/chats/models/{model}/acl      GET / PATCH (sparse, by ID; "" removes), share right
/api/v2/organizations/{org}/chats/models/{model}/acl/available

Coder answers 404, not 403, where a permission is missing on a model (read, update, delete,
share), on an organization's override, and on reading the personal-override toggle
(coderd/exp_chats.go, coderd/exp_chats_model_acl.go: `httpapi.ResourceNotFound`).
"""

from __future__ import annotations

from typing import Any

from .organizations import organization_or_404
from .state import ChatModel, State
from .wire import ApiError, Reply, Request, not_found, parse_json, parse_uuid

ADVISOR_EXPERIMENT = "chat-advisor"
READ = "read"
ROLES = (READ, "")  # "" removes an entry
PRICES_FEATURE = "aibridge"
GOVERNANCE_FEATURE = "ai_governance_user_limit"

# the permissions of an organization admin: everything on the organization's models, reading the rest
ORG_ADMIN = ("chat_model_config:create@{org}", "chat_model_config:read@{org}", "chat_model_config:update@{org}",
             "chat_model_config:delete@{org}", "chat_model_config:share@{org}", "organization:read@{org}",
             "ai_provider:read", "ai_model_price:read")


def can(state: State, resource: str, action: str, org_id: str | None = None) -> bool:
    """Whether the token may; `state.permissions` None is the owner, who may do anything."""
    if state.permissions is None:
        return True
    return f"{resource}:{action}" in state.permissions or (
        org_id is not None and f"{resource}:{action}@{org_id}" in state.permissions)


def require(state: State, resource: str, action: str, org_id: str | None = None) -> None:
    """403, as Coder answers where a handler checks with dbauthz (providers, prices, the toggle's PUT)."""
    if not can(state, resource, action, org_id):
        raise ApiError(403, "Forbidden.", f"the token may not {action} {resource}")


def require_or_404(state: State, resource: str, action: str, org_id: str | None = None) -> None:
    """404, as Coder answers where a handler checks with `api.Authorize` before revealing anything."""
    if not can(state, resource, action, org_id):
        raise not_found()


def visible(state: State, model: ChatModel) -> bool:
    """A model the token may read: all of them with the right, else those its access list grants."""
    if can(state, "chat_model_config", READ, model.organization_id):
        return True
    if model.user_acl.get(state.user_id) == READ:
        return True
    groups = {model.organization_id} | {g.id for g in _people(state).groups.values() if state.user_id in g.members}
    return any(model.group_acl.get(g) == READ for g in groups)


def list_experiments(state: State, req: Request) -> Reply:
    return Reply(200, sorted(state.experiments))


def get_entitlements(state: State, req: Request) -> Reply:
    features = {name: {"entitlement": "entitled" if on else "not_entitled", "enabled": on}
                for name, on in state.features.items()}
    return Reply(200, {"features": features, "warnings": [], "errors": [], "has_license": any(state.features.values()),
                       "trial": False, "require_telemetry": False, "refreshed_at": "2026-09-01T00:00:00Z"})


def authcheck(state: State, req: Request) -> Reply:
    body = parse_json(req.raw_body) or {}
    checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(checks, dict):
        raise ApiError(400, "Invalid request.", "checks is required")
    answers = {}
    for name, check in checks.items():
        if not isinstance(check, dict) or not isinstance(check.get("object"), dict):
            raise ApiError(400, "Invalid request.", f"check {name!r} has no object")
        obj = check["object"]
        answers[name] = can(state, str(obj.get("resource_type")), str(check.get("action")),
                            obj.get("organization_id") or None)
    return Reply(200, answers)


def list_members(state: State, req: Request) -> Reply:
    org = organization_or_404(state, req.params["org"])
    return Reply(200, [{"user_id": u.id, "username": u.username, "name": u.username.title(),
                        "organization_id": org.id, "roles": []} for u in _people(state).users.values()])


def _model(state: State, req: Request) -> ChatModel:
    from .models import model_or_404

    org = organization_or_404(state, req.params["org"])
    model = model_or_404(state, org.id, req.params["model"])
    require_or_404(state, "chat_model_config", "share", org.id)
    return model


def get_acl(state: State, req: Request) -> Reply:
    model = _model(state, req)
    people = _people(state)
    users = [{"id": uid, "username": people.users[uid].username, "name": people.users[uid].username.title(),
              "role": role} for uid, role in sorted(model.user_acl.items()) if uid in people.users]
    groups = []
    for gid, role in sorted(model.group_acl.items()):
        name = "Everyone" if gid == model.organization_id else getattr(people.groups.get(gid), "name", None)
        if name is not None:
            groups.append({"id": gid, "organization_id": model.organization_id, "name": name, "display_name": "",
                           "members": [], "total_member_count": 0, "role": role})
    return Reply(200, {"users": users, "groups": groups})


def patch_acl(state: State, req: Request) -> Reply:
    model = _model(state, req)
    body = req.json_object("UpdateChatModelACLRequest")
    people = _people(state)
    org_groups = {model.organization_id} | {g.id for g in people.groups.values()
                                             if g.organization_id == model.organization_id}
    changes = []
    for field, known, acl in (("user_roles", set(people.users), model.user_acl),
                              ("group_roles", org_groups, model.group_acl)):
        roles = body.string_map(field) or {}
        for principal, role in roles.items():
            canonical = parse_uuid(principal)
            if role not in ROLES:
                raise ApiError(400, "Invalid request to update chat model ACL.",
                               f"role {role!r} is not a valid chat model role")
            if canonical is None or canonical not in known:
                raise ApiError(400, "Invalid request to update chat model ACL.",
                               f"{principal} is not a member of the model's organization")
            changes.append((acl, canonical, role))
    for acl, principal, role in changes:
        if role:
            acl[principal] = role
        else:
            acl.pop(principal, None)
    return Reply(204)


def available(state: State, req: Request) -> Reply:
    model = _model(state, req)
    people = _people(state)
    return Reply(200, {
        "users": [{"id": u.id, "username": u.username} for u in people.users.values()],
        "groups": [{"id": model.organization_id, "name": "Everyone"}] + [
            {"id": g.id, "name": g.name} for g in people.groups.values()
            if g.organization_id == model.organization_id],
    })


def _people(state: State) -> Any:
    from .people import people_of

    return people_of(state)


ROUTES = (
    ("/api/v2/experiments", {"GET": list_experiments}),
    ("/api/v2/entitlements", {"GET": get_entitlements}),
    ("/api/v2/authcheck", {"POST": authcheck}),
    ("/api/v2/organizations/{org}/members", {"GET": list_members}),
    ("/api/v2/organizations/{org}/chats/models/{model}/acl", {"GET": get_acl, "PATCH": patch_acl}),
    ("/api/v2/organizations/{org}/chats/models/{model}/acl/available", {"GET": available}),
)
