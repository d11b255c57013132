"""Deployment basics: build info, the signed-in user, organizations."""

from __future__ import annotations

from typing import Any

from .state import Organization, State
from .wire import Reply, Request, not_found

ADMIN_USERNAME = "admin"


def organization_json(org: Organization) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "display_name": org.display_name,
        "is_default": org.is_default,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
    }


def organization_or_404(state: State, id_or_name: str) -> Organization:
    org = state.find_organization(id_or_name)
    if org is None:
        raise not_found()
    return org


def get_buildinfo(state: State, req: Request) -> Reply:
    return Reply(200, {"version": state.version})


def get_me(state: State, req: Request) -> Reply:
    return Reply(
        200,
        {
            "id": state.user_id,
            "username": state.username,
            "email": "admin@coder.example",
            "name": "Admin",
            "status": "active",
            "roles": [{"name": "owner", "display_name": "Owner"}] if state.permissions is None else [],
            "organization_ids": list(state.organizations),
        },
    )


def list_organizations(state: State, req: Request) -> Reply:
    return Reply(200, [organization_json(o) for o in state.organizations.values()])


def get_organization(state: State, req: Request) -> Reply:
    return Reply(200, organization_json(organization_or_404(state, req.params["org"])))
