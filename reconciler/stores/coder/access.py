"""Model access lists on Coder: who may use a model, by group and user name in records, by ID on the wire.

GET/PATCH /api/v2/organizations/{org}/chats/models/{model}/acl (coderd/exp_chats_model_acl.go):
the answer lists users and groups with their role; a PATCH is sparse (`user_roles` / `group_roles`
by ID, role "read", "" removes an entry). Coder's only model role is "read" (use). A new model's
list is the organization's Everyone group, whose ID is the organization's. Reading costs one
request per model, so only the models whose manifests set `access` are read; names resolve with
two requests per organization (its groups and its members).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.state import Record

READ = "read"
EVERYONE = "Everyone"


def acl_path(models_path: str, model_id: str) -> str:
    return f"{models_path}/{model_id}/acl"


@dataclass
class Principals:
    """An organization's groups and members: name -> ID."""

    groups: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)

    def names(self) -> dict[str, list[str]]:
        return {"groups": sorted(self.groups), "users": sorted(self.users)}


def principals_from(org_id: str, groups: Any, members: Any) -> Principals:
    """The answers of the organization's groups and members; Everyone's ID is the organization's."""
    out = Principals(groups={EVERYONE: org_id})
    for group in groups if isinstance(groups, list) else []:
        if isinstance(group, dict) and isinstance(group.get("name"), str) and isinstance(group.get("id"), str):
            out.groups[group["name"]] = group["id"]
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict) and isinstance(member.get("username"), str):
            user_id = member.get("user_id") or member.get("id")
            if isinstance(user_id, str):
                out.users[member["username"]] = user_id
    return out


def access_record(acl: Any, org_id: str) -> Record | None:
    """A model's access list as records hold it (names, sorted); None when the answer is not one."""
    if not isinstance(acl, dict):
        return None
    groups, users = [], []
    for group in acl.get("groups") or []:
        if isinstance(group, dict) and group.get("role") == READ:
            groups.append(EVERYONE if group.get("id") == org_id else str(group.get("name") or group.get("id")))
    for user in acl.get("users") or []:
        if isinstance(user, dict) and user.get("role") == READ:
            users.append(str(user.get("username") or user.get("id")))
    return {"groups": sorted(set(groups)), "users": sorted(set(users))}


def acl_patch(before: Mapping[str, Any] | None, after: Mapping[str, Any], known: Principals) -> dict[str, Any]:
    """The sparse PATCH from one access list to another; KeyError names a principal not known."""
    body: dict[str, Any] = {}
    for part, ids, field_name in (("groups", known.groups, "group_roles"), ("users", known.users, "user_roles")):
        had, wanted = set((before or {}).get(part) or []), set(after.get(part) or [])
        roles = {ids[name]: READ for name in sorted(wanted - had)}
        roles.update({ids[name]: "" for name in sorted(had - wanted)})
        if roles:
            body[field_name] = roles
    return body


def created_access() -> Record:
    """What Coder gives a new model: its organization's Everyone group."""
    return {"groups": [EVERYONE], "users": []}
